// The page's copy of the answers it watched stream (wrapped in app/ui/state/stream.py).
//
// An answer reaches the page piece by piece through the stream state's slots. When the block
// is finished the backend does not send its text a second time: the finished block names the
// stream it came from (`streamKey`), and the page shows the text it already holds.
//
// `StreamKeeper` renders nothing: after each update of the slots it records their text under
// the stream's key (the backend leaves a finished block's slots alone until the next block
// starts under a new key). `KeptText` wraps a finished block's markdown element and gives it
// that record as its text, drawing again when the record grows: the block's last pieces may
// arrive in the same update as the block itself.
//
// A page that was reloaded holds no record; it opens the session again and the backend sends
// the history's whole text, which `KeptText` then shows as it is.

import { cloneElement, useEffect, useSyncExternalStore } from "react";

const kept = new Map(); // stream key -> the text streamed under it
const listeners = new Set();

const subscribe = (listener) => {
  listeners.add(listener);
  return () => listeners.delete(listener);
};

export function StreamKeeper({ streamKey, parts }) {
  const text = streamKey ? parts.join("") : "";
  useEffect(() => {
    if (streamKey && text && kept.get(streamKey) !== text) {
      kept.set(streamKey, text);
      listeners.forEach((listener) => listener());
    }
  }, [streamKey, text]);
  return null;
}

export function KeptText({ streamKey, children }) {
  const text = useSyncExternalStore(subscribe, () => (streamKey ? kept.get(streamKey) : undefined));
  return text === undefined ? children : cloneElement(children, undefined, text);
}
