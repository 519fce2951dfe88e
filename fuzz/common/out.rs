//! The encoder's view of decoded messages, shared by the fuzz targets that check
//! that a decoded message re-encodes to what was received.

use socketioxide_nats_protocol::message::{
    RequestBody, RequestIn, RequestOut, RequestOutBody, ResponseBody, ResponseIn, ResponseOut,
    ResponseOutBody,
};

/// The encoder's borrowed view of a decoded request: every field is available, so
/// a decoded message can always be sent again.
pub(crate) fn request_out(req: &RequestIn) -> RequestOut<'_> {
    use RequestBody as B;
    use RequestOutBody as O;
    let body = match &req.body {
        B::Broadcast { opts, packet } => O::Broadcast { opts, packet },
        B::BroadcastWithAck {
            opts,
            packet,
            ack_timeout,
        } => O::BroadcastWithAck {
            opts,
            packet,
            ack_timeout: *ack_timeout,
        },
        B::DisconnectSockets { opts } => O::DisconnectSockets { opts },
        B::AllRooms { opts } => O::AllRooms { opts },
        B::AddSockets { opts, rooms } => O::AddSockets { opts, rooms },
        B::DelSockets { opts, rooms } => O::DelSockets { opts, rooms },
        B::FetchSockets { opts } => O::FetchSockets { opts },
        B::Heartbeat => O::Heartbeat,
        B::Hello => O::Hello,
        B::Goodbye => O::Goodbye,
        B::Discover => O::Discover,
        B::ServerEvent { event, data } => O::ServerEvent { event, data },
        B::CustomRequest { data } => O::CustomRequest { data },
        // Loud on purpose: a new message type must get its round trip checked here.
        other => panic!("request type unknown to the fuzz target: {other:?}"),
    };
    RequestOut {
        origin: req.origin,
        id: req.id,
        body,
    }
}

/// The encoder's borrowed view of a decoded response.
pub(crate) fn response_out(resp: &ResponseIn) -> ResponseOut<'_> {
    use ResponseBody as B;
    use ResponseOutBody as O;
    let body = match &resp.body {
        B::Ack { sid, result } => O::Ack {
            sid: *sid,
            result: result.as_ref().map_err(|e| &e[..]),
        },
        B::AckCount(n) => O::AckCount(*n),
        B::Rooms(rooms) => O::Rooms(rooms),
        B::Sockets(sockets) => O::Sockets(sockets),
        B::Done(n) => O::Done(*n),
        B::Reply(r) => O::Reply(r.as_ref().map(|d| &d[..]).map_err(String::as_str)),
        B::Nodes(nodes) => O::Nodes(nodes),
        other => panic!("response type unknown to the fuzz target: {other:?}"),
    };
    ResponseOut {
        origin: resp.origin,
        body,
    }
}
