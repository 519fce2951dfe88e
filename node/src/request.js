// Asking the servers, and knowing when every live server has answered
// (PROTOCOL.md §6 "Completion" and §10); a port of the Rust emitter's
// `request.rs`.
//
// An emitter does not follow heartbeats, so each request goes out together with
// a Discover, both with reply subjects under a fresh requester id. Every server
// answers the Discover with the other servers it knows; the request waits for
// every server that answered it, every server named in an answer, and every
// server whose answer of the expected type arrives on the request's reply
// subject (only a receiver of the request knows it). Which of them still owes
// what is the Tracker.
//
// A server named by the others may have crashed: they keep naming it until
// their heartbeat timeout. So 50 ms into the request, every server that has
// sent nothing of what it owes is probed: a Discover on its own subject, with a
// reply subject of its own (again every 200 ms while it stays silent). NATS
// answers "no responders" (status 503) at once when nobody listens there: the
// server is gone. Its own Nodes answer means it is alive. No answer within the
// probe timeout also means gone (something else listens on its subject).

import { encodeRequest, decodeResponse, Req, Res } from "./codec.js";
import { ConnectionError, IncompleteError, NoServersError, PayloadTooLargeError, TimeoutError } from "./errors.js";
import { randomId } from "./subjects.js";
import { Expect, Tracker } from "./tracker.js";

/** How long a request waits for a server's first answer before probing it. */
export const PROBE_AFTER = 50;
/** How often a server that stays silent (while answering probes) is probed again. */
export const PROBE_AGAIN = 200;
/** How often the request checks its probes. */
const TICK = 10;
/** The most servers one request waits for: a forged Nodes answer naming thousands cannot make the emitter probe them all. */
export const MAX_NODES = 4096;
/** The most probes in flight at once. */
export const MAX_PROBES = 256;
/** The longest delay setTimeout takes. */
const MAX_DELAY = 2 ** 31 - 1;

const NO_SERVERS = Symbol("no servers");

/**
 * Publish `payload`, refusing it first if it exceeds the server's max_payload.
 * @param {import("nats").NatsConnection} nc
 */
export function publish(nc, subject, payload, reply) {
  const max = nc.info?.max_payload;
  if (max !== undefined && payload.length > max) throw new PayloadTooLargeError(payload.length, max);
  if (nc.isClosed()) throw new ConnectionError(`cannot publish to ${subject}: the NATS connection is closed`);
  try {
    nc.publish(subject, payload, reply === undefined ? undefined : { reply });
  } catch (cause) {
    throw new ConnectionError(`cannot publish to ${subject}: ${cause.message}`, { cause });
  }
}

/** Whether a message is NATS's "no responders" status (503, no payload). */
export function isNoResponders(msg) {
  return msg.data.length === 0 && msg.headers?.code === 503;
}

/**
 * One request's state: whom it waits for and what came. No I/O here, so the
 * decisions are tested without a broker.
 */
export class Round {
  constructor(me, discoverId, requestId, expect, started, probeTimeout, logger) {
    this.me = me;
    this.discoverId = discoverId;
    this.requestId = requestId;
    this.started = started;
    this.probeTimeout = probeTimeout;
    this.logger = logger;
    /** Who answered the Discover (or a probe): every server owes one Nodes. */
    this.discovery = new Tracker(Expect.one(Res.Nodes));
    /** Who answered the request; null for discovery alone. */
    this.request = expect ? new Tracker(expect) : null;
    /** The servers whose Nodes answer was accepted, in arrival order. */
    this.answered = [];
    /** The answers to the request itself, in arrival order. */
    this.responses = [];
    /** Probes in flight: probe request id -> {target, deadline}. */
    this.probes = new Map();
    /** The servers being probed. */
    this.probing = new Set();
    /** When each server was last probed. */
    this.probedAt = new Map();
    this.overflow = false;
  }

  /** Wait for `uid`'s answers too (nothing changes if it is tracked already). */
  expectNode(uid) {
    if (uid === this.me || this.discovery.isExpected(uid)) return;
    if (this.discovery.size >= MAX_NODES) {
      if (!this.overflow) {
        this.overflow = true;
        this.logger.warn(`more than ${MAX_NODES} servers named: the others are not waited for`);
      }
      return;
    }
    this.discovery.expectNode(uid);
    this.request?.expectNode(uid);
  }

  /** A server stopped serving (or never served): stop waiting for it. */
  gone(uid, why) {
    const owedDiscovery = this.discovery.gone(uid);
    const owedRequest = this.request ? this.request.gone(uid) : false;
    if (owedDiscovery || owedRequest) this.logger.debug(`not waiting for server ${uid}: ${why}`);
  }

  /**
   * An answer on the reply subject whose last token is `token`. Returns
   * NO_SERVERS on a 503 for the Discover or the request (both were published on
   * the broadcast subject).
   */
  onReply(token, noResponders, payload) {
    const isRequest = token === this.requestId && this.request !== null;
    if (token === this.discoverId || isRequest) {
      if (noResponders) return NO_SERVERS;
      const res = this.decode(token, payload);
      if (res && res.origin !== this.me) {
        if (isRequest) this.onRequestAnswer(res);
        else this.onDiscoverAnswer(res);
      }
      return undefined;
    }
    if (!this.probes.has(token)) {
      this.logger.debug(`answer to no pending request (${token}) dropped`);
      return undefined;
    }
    this.onProbeAnswer(token, noResponders, payload);
    return undefined;
  }

  decode(token, payload) {
    try {
      return decodeResponse(payload);
    } catch (error) {
      this.logger.warn(`undecodable answer to request ${token} dropped: ${error.message}`);
      return null;
    }
  }

  onDiscoverAnswer(res) {
    // Only a receiver of the Discover knows its reply subject.
    this.expectNode(res.origin);
    this.onNodes(res);
  }

  /** A Nodes answer from `res.origin`, to the Discover or to a probe: it is alive, and names the servers it knows. */
  onNodes(res) {
    if (res.type !== Res.Nodes) {
      this.logger.debug(`answer of type ${res.type} to a Discover from ${res.origin} dropped`);
      return;
    }
    if (this.discovery.onResponse(res) === "accept") this.answered.push(res.origin);
    for (const uid of res.nodes) this.expectNode(uid);
  }

  onRequestAnswer(res) {
    const request = this.request;
    // A server's answer can arrive before its Discover answer. Only a receiver
    // of the request knows the request's reply subject, so its first answer
    // there proves that its sender serves the namespace: wait for it from then
    // on. A forged id gets a probe like any silent server and is found gone.
    if (opens(request.expect, res)) this.expectNode(res.origin);
    const verdict = request.onResponse(res);
    if (verdict === "accept") this.responses.push(res);
    else this.logger.debug(`answer from ${res.origin} ignored: ${verdict}`);
  }

  onProbeAnswer(probeId, noResponders, payload) {
    const target = this.probes.get(probeId).target;
    if (noResponders) {
      this.endProbe(probeId);
      this.gone(target, "nobody listens on its subject");
      return;
    }
    const res = this.decode(probeId, payload);
    if (!res) return;
    if (res.origin === target && res.type === Res.Nodes) {
      this.endProbe(probeId);
      this.onNodes(res);
    } else {
      // Something else listening on the server's subject: only the server's
      // own answer counts, until the probe times out.
      this.logger.debug(`probe answer for ${target} from ${res.origin} ignored`);
    }
  }

  endProbe(probeId) {
    const p = this.probes.get(probeId);
    if (p) {
      this.probes.delete(probeId);
      this.probing.delete(p.target);
    }
  }

  /** A probe could not be published: it says nothing, try again later. */
  unsent(probeId) {
    this.endProbe(probeId);
  }

  /**
   * Time out the probes due, and pick the servers to probe now: those that owe
   * something and have sent nothing of it, not probed within PROBE_AGAIN.
   * Returns each with the request id of its probe, already counted in flight.
   * @returns {Array<[string, string]>}
   */
  dueProbes(now) {
    for (const [id, p] of [...this.probes]) {
      if (p.deadline <= now) {
        this.endProbe(id);
        this.gone(p.target, "it did not answer a liveness probe");
      }
    }
    if (now < this.started + PROBE_AFTER) return [];
    const silent = new Set(this.discovery.owing());
    if (this.request) for (const uid of this.request.owing()) silent.add(uid);
    const due = [];
    for (const uid of silent) {
      const isSilent = this.discovery.isSilent(uid) || (this.request?.isSilent(uid) ?? false);
      const at = this.probedAt.get(uid);
      const recent = at !== undefined && now - at < PROBE_AGAIN;
      if (!isSilent || recent || this.probing.has(uid)) continue;
      if (this.probes.size >= MAX_PROBES) break;
      const id = randomId();
      this.probes.set(id, { target: uid, deadline: now + this.probeTimeout });
      this.probing.add(uid);
      this.probedAt.set(uid, now);
      due.push([uid, id]);
    }
    return due;
  }

  /** Every server known answered in full, or is gone. */
  isComplete() {
    return this.discovery.size > 0 && this.discovery.isComplete() && (this.request?.isComplete() ?? true);
  }

  /** The result, or the error: nobody answered (timeout), or live servers still owe answers (incomplete). */
  finish(timeoutMs, ns) {
    if (this.discovery.size === 0) throw new TimeoutError(ns, timeoutMs);
    if (this.request) {
      const missing = this.request.owing();
      if (missing.length > 0) throw new IncompleteError(missing, timeoutMs);
    }
    return { nodes: this.answered, responses: this.responses };
  }
}

/** Whether `res` is the first answer a server sends to a request expecting `expect`. */
function opens(expect, res) {
  if (expect.kind === "acks") return res.type === Res.AckCount;
  return res.type === expect.type && res.type !== Res.Ack && res.type !== Res.AckCount;
}

/**
 * Send `ask` (a request body, and what it expects from each server; null to
 * only discover the servers) with a Discover, and collect the answers until
 * every live server answered, or `timeoutMs` passes.
 *
 * @param {object} t where the request goes: {nc, subjects, origin, ns, prefix, probeTimeout, logger, epoch}
 * @param {{body: object, expect: object} | null} ask
 * @returns {Promise<{nodes: string[], responses: object[]}>}
 */
export function request(t, ask, timeoutMs) {
  const { nc, subjects, origin } = t;
  // A fresh requester id per request: its answers, and its probes' answers,
  // have subjects of their own.
  const requester = randomId();
  const discoverId = randomId();
  const requestId = randomId();
  const to = subjects.broadcast(origin);
  const signed = (id, body) => encodeRequest({ ...body, origin, id });
  // Encoded (and checked against max_payload) before anything is published.
  const discover = signed(discoverId, { type: Req.Discover });
  const payload = ask ? signed(requestId, ask.body) : null;
  const max = nc.info?.max_payload;
  if (payload && max !== undefined && payload.length > max) {
    return Promise.reject(new PayloadTooLargeError(payload.length, max));
  }
  if (nc.isClosed()) return Promise.reject(new ConnectionError("the NATS connection is closed"));

  return new Promise((resolve, reject) => {
    const started = performance.now();
    const epoch = t.epoch();
    const round = new Round(origin, discoverId, requestId, ask?.expect ?? null, started, t.probeTimeout, t.logger);
    let finished = false;
    let sub;
    let tick;
    let deadline;
    const end = (error, value) => {
      if (finished) return;
      finished = true;
      clearInterval(tick);
      clearTimeout(deadline);
      try {
        sub?.unsubscribe();
      } catch {
        // the connection is already closed
      }
      if (error) reject(error);
      else resolve(value);
    };
    const settle = () => {
      if (t.epoch() !== epoch) {
        // Answers may have been lost while the connection was down: what came
        // is not known to be complete.
        end(new ConnectionError("the NATS connection was lost during the request: answers may be missing; retry"));
        return;
      }
      try {
        end(null, round.finish(timeoutMs, t.ns));
      } catch (error) {
        end(error);
      }
    };
    const check = () => {
      if (!finished && round.isComplete()) settle();
    };

    try {
      sub = nc.subscribe(subjects.replyFilter(requester), {
        callback: (err, msg) => {
          if (finished) return;
          if (err) {
            end(new ConnectionError(`cannot receive the servers' answers: ${err.message}`, { cause: err }));
            return;
          }
          const token = msg.subject.slice(msg.subject.lastIndexOf(".") + 1);
          if (round.onReply(token, isNoResponders(msg), msg.data) === NO_SERVERS) {
            end(new NoServersError(t.ns, t.prefix));
            return;
          }
          check();
        },
      });
      sub.closed.then(() => {
        if (!finished) end(new ConnectionError("the NATS connection closed before every server answered"));
      });
      publish(nc, to, discover, subjects.reply(requester, discoverId));
      if (payload) publish(nc, to, payload, subjects.reply(requester, requestId));
    } catch (error) {
      end(error);
      return;
    }

    tick = setInterval(() => {
      if (finished) return;
      for (const [target, id] of round.dueProbes(performance.now())) {
        try {
          publish(nc, subjects.node(target, origin), signed(id, { type: Req.Discover }), subjects.reply(requester, id));
        } catch (error) {
          t.logger.debug(`cannot send a liveness probe to ${target}: ${error.message}`);
          round.unsent(id);
        }
      }
      check();
    }, TICK);
    deadline = setTimeout(settle, Math.min(timeoutMs, MAX_DELAY));
  });
}
