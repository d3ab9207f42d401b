// agent-web: the Reflex socket through AgentCore (added at export by app/static_site/plugin.py).
// AgentCore's /ws takes the access token as a subprotocol and the runtime session id (one per
// user, from the token's `sub`) in the query; it may drop other query parameters, so the tab's
// Reflex token also travels as a custom parameter, which AgentCore turns into a header. The
// socket.io namespace stays Reflex's `/_event`; only the engine.io path is AgentCore's.
const agentWebClaims = (jwt) => {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
};

const agentWebSocketOptions = (token) => {
  const access = window.localStorage.getItem("aw_access") || "";
  const claims = agentWebClaims(access);
  if (!claims || !claims.sub || claims.exp * 1000 < Date.now() + 30000) {
    // Nothing to show the runtime: sign in (or refresh) on the static page first.
    window.location.assign("/signin.html?next=" + encodeURIComponent(window.location.pathname));
    throw new Error("agent-web: signing in first");
  }
  const encoded = btoa(access).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return {
    protocols: ["base64UrlBearerAuthorization." + encoded, "base64UrlBearerAuthorization"],
    query: {
      token,
      "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "agent-web-workspace-" + claims.sub,
      "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Reflex": token,
    },
  };
};

// A user's first connection boots their microVM (seconds): say so while the socket opens.
const agentWebStarting = (socket) => {
  let timer = null;
  let note = null;
  const started = Date.now();
  const show = () => {
    note = note || document.getElementById("aw-starting") || document.createElement("div");
    note.id = "aw-starting";
    note.setAttribute("role", "status");
    note.textContent =
      "Starting your workspace… " + Math.round((Date.now() - started) / 1000) + " s";
    Object.assign(note.style, {
      position: "fixed", top: "12px", left: "50%", transform: "translateX(-50%)",
      padding: "8px 16px", borderRadius: "8px", background: "#6e56cf", color: "#fff",
      font: "14px system-ui, sans-serif", zIndex: "1000",
    });
    if (!note.isConnected) document.body.append(note);
    timer = setTimeout(show, 1000);
  };
  socket.io.on("open", () => {
    clearTimeout(timer);
    note?.remove();
  });
  timer = setTimeout(show, 500);
  return socket;
};

// No socket message over AgentCore's 32 KB (it closes with 1009): bigger ones travel as
// "aw_piece" messages [id, index, count, base64 of up to 20,000 bytes], both ways
// (the container's half is app/api/pieces.py).
const AW_FRAME_LIMIT = 30000;
const AW_PIECE_BYTES = 20000;

const agentWebBase64 = (bytes) => {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
};

const agentWebPieces = (socket) => {
  const emit = socket.emit.bind(socket);
  socket.emit = (event, ...args) => {
    if (event === "event" && args.length === 1) {
      const text = JSON.stringify(args[0]);
      const bytes = new TextEncoder().encode(text);
      if (bytes.length > AW_FRAME_LIMIT) {
        const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
        const count = Math.ceil(bytes.length / AW_PIECE_BYTES);
        for (let i = 0; i < count; i++) {
          const piece = bytes.subarray(i * AW_PIECE_BYTES, (i + 1) * AW_PIECE_BYTES);
          emit("aw_piece", [id, i, count, agentWebBase64(piece)]);
        }
        return socket;
      }
    }
    return emit(event, ...args);
  };
  const partial = new Map();
  socket.on("aw_piece", ([id, index, count, data]) => {
    const pieces = partial.get(id) || [];
    pieces[index] = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    partial.set(id, pieces);
    if (pieces.filter(Boolean).length < count) return;
    partial.delete(id);
    const joined = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const piece of pieces) {
      joined.set(piece, at);
      at += piece.length;
    }
    const update = JSON.parse(new TextDecoder().decode(joined));
    for (const handler of socket.listeners("event")) handler(update);
  });
  return socket;
};

// "Restart workspace" (app/ui/state/workspace.py) ends with this: StopRuntimeSession ends the
// user's microVM (every process and its disk; the workspace was backed up to S3 first), and the
// reload boots a fresh one, which restores it. (Set on `window` by createSocket: the module
// is also run by the export's prerender, which has no window.)
const agentWebStopRuntime = async (endpoint) => {
  const access = window.localStorage.getItem("aw_access") || "";
  const claims = agentWebClaims(access);
  if (!claims || !claims.sub) return;
  const url = new URL(endpoint.href);
  url.protocol = url.protocol === "ws:" ? "http:" : "https:";
  url.pathname = url.pathname.replace(/\/ws\/?$/, "/stopruntimesession");
  try {
    await fetch(url, {
      method: "POST",
      headers: {
        Authorization: "Bearer " + access,
        "Content-Type": "application/json",
        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "agent-web-workspace-" + claims.sub,
      },
      body: "{}",
    });
  } finally {
    window.location.reload();
  }
};

const createSocket = (endpoint, transports, token) => {
  window.agentWebStopRuntime = () => agentWebStopRuntime(endpoint);
  return agentWebStarting(
    agentWebPieces(
      io(endpoint.origin + "/_event", {
        path: endpoint.pathname,
        addTrailingSlash: false,
        transports,
        autoUnref: false,
        autoConnect: false,
        reconnection: false,
        ...agentWebSocketOptions(token),
      }),
    ),
  );
};
