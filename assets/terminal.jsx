// The page's terminal: xterm.js showing output the app sends over the Reflex socket, and
// sending keys and size back as Reflex events (see app/ui/components/terminal.py).
//
// `output` is one piece of the terminal's output: {gen, start, end, data}, offsets counting
// characters since the shell started. A new `gen` means "start over" (a reload, a new shell):
// the screen is cleared and pieces follow from the oldest output kept. Pieces already written
// are skipped; a piece that starts later than what was written means one went missing (React
// can render two socket messages as one): the terminal asks again from where it is.
import { useEffect, useRef } from "react";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";

const INPUT_PIECE = 4096; // characters per input event: a paste never makes a large message
const RESIZE_SETTLE_MS = 80;

export function AgentTerminal({ output, onReady, onSize, onKeys, onMissing, id, className }) {
  const box = useRef(null);
  const term = useRef(null);
  const shown = useRef({ gen: -1, written: 0, asked: -1 });
  const handlers = useRef({});
  handlers.current = { onReady, onSize, onKeys, onMissing };

  useEffect(() => {
    const terminal = new Terminal({
      cursorBlink: true,
      fontSize: 13,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
      scrollback: 5000,
      theme: { background: "#111113" },
    });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(box.current);
    term.current = terminal;
    const fitted = () => {
      try {
        fit.fit();
      } catch {
        // not laid out yet: keep the last size
      }
      return [terminal.cols, terminal.rows];
    };
    const keys = terminal.onData((text) => {
      for (let i = 0; i < text.length; i += INPUT_PIECE) {
        handlers.current.onKeys?.(text.slice(i, i + INPUT_PIECE));
      }
    });
    let timer = null;
    const observer = new ResizeObserver(() => {
      clearTimeout(timer);
      timer = setTimeout(() => handlers.current.onSize?.(...fitted()), RESIZE_SETTLE_MS);
    });
    observer.observe(box.current);
    handlers.current.onReady?.(...fitted());
    terminal.focus();
    return () => {
      clearTimeout(timer);
      observer.disconnect();
      keys.dispose();
      terminal.dispose();
      term.current = null;
    };
  }, []);

  useEffect(() => {
    const terminal = term.current;
    if (!terminal || !output) return;
    const { gen, start, end, data } = output;
    const seen = shown.current;
    if (seen.gen === -1) {
      // Just mounted: what the state holds is from before (its onReady starts a new gen).
      shown.current = { gen, written: Infinity, asked: -1 };
      return;
    }
    if (gen !== seen.gen) {
      // Through the write queue, not terminal.reset(): writes are parsed later, and a reset
      // must not overtake what was written before it.
      terminal.write("\x1bc");
      shown.current = { gen, written: start, asked: -1 };
    }
    const now = shown.current;
    if (start > now.written) {
      if (now.asked !== now.written) {
        now.asked = now.written;
        handlers.current.onMissing?.(now.written);
      }
      return;
    }
    if (end > now.written) {
      terminal.write(data.slice(now.written - start));
      now.written = end;
    }
  }, [output]);

  return <div id={id} className={className} ref={box} style={{ width: "100%", height: "100%" }} />;
}
