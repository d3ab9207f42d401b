// Where the Files tab's downloads land (wrapped in app/ui/components/download.py).
//
// The page reaches the backend only through its Reflex socket (on AWS, AgentCore forwards
// nothing else and closes the socket on any message over 32 KB), so the backend shows a file
// here one piece at a time through `piece` ({id, index, total, data, name, mime}, the bytes in
// base64) and sends the next only once `onAck({id, index})` said this one arrived: React never
// renders two pieces as one. After the last piece the file is saved through a temporary
// <a download> on a blob: URL. The pieces gather outside the component, so a download goes on
// when the Files tab is left and shown again; a piece that cannot continue what is held (the
// page was reloaded midway) or a backend that stops sending ends it with `onFail`.

import { useEffect, useRef } from "react";

const STALL_MS = 120000; // no next piece for this long: give up
const REVOKE_MS = 10000; // the browser has taken the file by then

let receiving = null; // {id, parts, saved}: the download under way, across mounts

const fromBase64 = (text) => {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
};

const save = (parts, name, mime) => {
  const url = URL.createObjectURL(new Blob(parts, { type: mime }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.style.display = "none";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), REVOKE_MS);
};

// Take `piece` into `receiving`; false when it does not follow what is held.
const take = (piece) => {
  const { id, index, total } = piece;
  if (index === 0 && receiving?.id !== id) {
    receiving = { id, parts: [], saved: false };
  }
  if (receiving?.id !== id) {
    return false;
  }
  if (receiving.saved) {
    return true; // the last piece shown again: saved already
  }
  if (index > receiving.parts.length) {
    return false;
  }
  if (index === receiving.parts.length) {
    receiving.parts.push(fromBase64(piece.data));
  } // else shown again (a reconnection): held already
  if (index === total - 1) {
    receiving.saved = true;
    save(receiving.parts, piece.name, piece.mime);
    receiving.parts = [];
  }
  return true;
};

export function DownloadSink({ piece, onAck, onFail }) {
  const handlers = useRef({});
  handlers.current = { onAck, onFail };

  useEffect(() => {
    if (!piece?.id) {
      receiving = null; // over (or never begun): nothing is held
      return undefined;
    }
    const { id, index, total } = piece;
    if (!take(piece)) {
      receiving = null;
      handlers.current.onFail?.({ id, reason: "lost" });
      return undefined;
    }
    handlers.current.onAck?.({ id, index });
    if (index === total - 1) {
      return undefined;
    }
    const timer = setTimeout(
      () => handlers.current.onFail?.({ id, reason: "stalled" }),
      STALL_MS,
    );
    return () => clearTimeout(timer);
  }, [piece]);

  return null;
}
