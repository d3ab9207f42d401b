// The Files tab's Upload button (wrapped in app/ui/components/upload.py).
//
// The page reaches the backend only through its Reflex socket (on AWS, AgentCore forwards
// nothing else and closes the socket on any message over 32 KB), so a chosen file is read
// here with the File API and sent as `onChunk` events of at most `pieceBytes` raw bytes each,
// in base64. The backend acknowledges what it holds through `ack` ({id, received, done});
// at most WINDOW pieces travel ahead of it, so a large file never floods the socket or the
// page's event queue. Files go one after another; a file over `maxBytes` is refused here,
// before anything is read.

import { Fragment, createElement, useEffect, useRef } from "react";

const WINDOW = 4; // pieces sent ahead of the backend's acknowledgement
const STALL_MS = 120000; // no word from the backend for this long: give up
const POLL_MS = 20;

const toBase64 = (bytes) => {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x2000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x2000));
  }
  return btoa(binary);
};

// crypto.randomUUID needs a secure context; a phone on the local network is not one.
const newId = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");

const pause = () => new Promise((resolve) => setTimeout(resolve, POLL_MS));

export function UploadButton({
  children,
  id,
  inputId,
  maxBytes,
  pieceBytes,
  ack,
  onChunk,
  onRefuse,
}) {
  const input = useRef(null);
  const latest = useRef(ack);
  const queue = useRef(Promise.resolve());
  useEffect(() => {
    latest.current = ack;
  }, [ack]);

  // Until `ok(ack)` holds; false when the backend said nothing new for STALL_MS.
  const waitFor = async (ok) => {
    let seen = latest.current;
    let since = Date.now();
    while (!ok(latest.current ?? {})) {
      if (latest.current !== seen) {
        seen = latest.current;
        since = Date.now();
      } else if (Date.now() - since > STALL_MS) {
        return false;
      }
      await pause();
    }
    return true;
  };

  const send = async (file) => {
    const about = { name: file.name, size: file.size };
    if (file.size > maxBytes) {
      onRefuse?.({ ...about, reason: "too_large" });
      return;
    }
    const upload = newId();
    const count = Math.max(1, Math.ceil(file.size / pieceBytes));
    for (let index = 0; index < count; index++) {
      const offset = index * pieceBytes;
      const ready = await waitFor((a) =>
        a.id === upload
          ? a.done || a.received >= offset - WINDOW * pieceBytes
          : index < WINDOW,
      );
      if (!ready) {
        onRefuse?.({ ...about, id: upload, reason: "stalled" });
        return;
      }
      if (latest.current?.id === upload && latest.current.done) {
        return; // refused by the backend, which says why
      }
      let bytes;
      try {
        bytes = new Uint8Array(
          await file.slice(offset, offset + pieceBytes).arrayBuffer(),
        );
      } catch {
        onRefuse?.({ ...about, id: upload, reason: "unreadable" });
        return;
      }
      onChunk?.({ ...about, id: upload, offset, data: toBase64(bytes) });
    }
    if (!(await waitFor((a) => a.id === upload && a.done))) {
      onRefuse?.({ ...about, id: upload, reason: "stalled" });
    }
  };

  const chosen = (event) => {
    const files = Array.from(event.target.files ?? []);
    event.target.value = ""; // the same file can be chosen again
    for (const file of files) {
      queue.current = queue.current.then(() => send(file));
    }
  };

  return createElement(
    Fragment,
    null,
    createElement(
      "span",
      { id, onClick: () => input.current?.click(), style: { display: "inline-flex" } },
      children,
    ),
    createElement("input", {
      ref: input,
      id: inputId,
      type: "file",
      multiple: true,
      hidden: true,
      onChange: chosen,
    }),
  );
}
