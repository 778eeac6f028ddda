// TensorBoard's plugin host channel (not shipped as a library; this is the guest half).
// The guest posts "experimental.bootstrap" with a MessagePort to the parent; messages are JSON
// {type, id, payload, error, isReply}; every request from the host gets a reply.

const RELOAD_TYPES = new Set(["experimental.RunsChanged", "experimental.DataReloaded"]);

interface Message {
  type: string;
  id: number;
  payload: unknown;
  error: string | null;
  isReply: boolean;
}

/** Calls `onReload` when TensorBoard reports new runs or reloaded data. No-op when not framed. */
export function connectHost(onReload: () => void): void {
  if (window.parent === window) return;
  try {
    const channel = new MessageChannel();
    const port = channel.port1;
    port.addEventListener("message", (event: MessageEvent) => {
      let message: Message;
      try {
        message = JSON.parse(String(event.data)) as Message;
      } catch {
        return;
      }
      if (message.isReply) return;
      port.postMessage(JSON.stringify({ type: message.type, id: message.id, payload: null, error: null, isReply: true }));
      if (RELOAD_TYPES.has(message.type)) onReload();
    });
    port.start();
    window.parent.postMessage("experimental.bootstrap", "*", [channel.port2]);
  } catch {
    // Cross-origin or sandboxed parent: the window focus listener still refreshes.
  }
}
