// The wire protocol's building blocks, for tools that follow or test the
// traffic: `@socketioxide-nats/emitter/protocol`.

export { decodeRequest, decodeResponse, encodeRequest, encodeResponse, Flags, Req, Res, VERSION } from "./codec.js";
export { DEFAULT_PREFIX, NsSubjects, nsToken, randomId, validatePrefix } from "./subjects.js";
export { Expect, Ignored, Tracker } from "./tracker.js";
export { PROBE_AFTER, PROBE_AGAIN } from "./request.js";
