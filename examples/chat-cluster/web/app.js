// The chat page: join a room, chat, and watch the cluster. The socket.io client
// is the official one from npm, served by the node as /socket.io.min.js.
const $ = (id) => document.getElementById(id);
const socket = io({ transports: ["websocket"] });
let joined = false;
let typingTimer = null;

function add(html, cls) {
  const li = document.createElement("li");
  if (cls) li.className = cls;
  li.innerHTML = html;
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

socket.on("welcome", ({ node }) => {
  $("node").textContent = node;
  document.title = `chat · ${node}`;
});
socket.on("chat", ({ name, text, node }) =>
  add(`<b>${esc(name)}</b>: ${esc(text)}<span class="node">via ${esc(node)}</span>`, "chat"));
socket.on("system", ({ text }) => add(esc(text), "system"));
socket.on("typing", ({ name, node }) => {
  $("typing").textContent = `${name} (${node}) is typing…`;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => ($("typing").textContent = ""), 2000);
});
socket.on("disconnect", () => add("disconnected from the server", "system"));

$("join").addEventListener("submit", async (e) => {
  e.preventDefault();
  const res = await socket.timeout(5000).emitWithAck("join", { name: $("name").value, room: $("room").value });
  if (res.error) return add(esc(res.error), "system");
  joined = true;
  $("send").hidden = false;
  $("text").focus();
});
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  socket.emit("chat", text);
  $("text").value = "";
});
let lastTyping = 0;
$("text").addEventListener("input", () => {
  if (joined && Date.now() - lastTyping > 1000) {
    lastTyping = Date.now();
    socket.emit("typing");
  }
});

async function refreshCluster() {
  try {
    const state = await socket.timeout(4000).emitWithAck("cluster");
    if (state.error) throw new Error(state.error);
    $("node-count").textContent = state.nodes.length;
    $("nodes").tBodies[0].innerHTML = state.nodes
      .map((n) => `<tr class="${n.you ? "you" : ""}"><td>${esc(n.name)}</td><td>${n.sockets}</td></tr>`)
      .join("");
    $("m-sent").textContent = state.metrics.sent;
    $("m-received").textContent = state.metrics.received;
    $("m-dropped").textContent = state.metrics.dropped;
    $("rooms").tBodies[0].innerHTML = state.rooms
      .map((r) => `<tr><td>${esc(r.room)}</td><td>${Object.entries(r.perNode)
        .map(([n, c]) => `${esc(n)}: ${c}`).join(", ")}</td></tr>`)
      .join("");
  } catch (e) {
    $("node-count").textContent = "?";
  }
}
socket.on("connect", refreshCluster);
setInterval(refreshCluster, 1500);
