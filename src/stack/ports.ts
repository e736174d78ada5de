import net from 'node:net';

const listenOn = (port: number) =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });

// Ports this process handed out recently: services starting in parallel each ask for a free port
// before any of them binds, and the OS may offer a just-closed port twice.
const handedOut = new Set<number>();
const remember = (port: number) => {
  handedOut.add(port);
  setTimeout(() => handedOut.delete(port), 60_000).unref();
  return port;
};

/** `preferred` when it can be bound on 127.0.0.1, otherwise a free port the OS picks. */
export async function freePort(preferred?: number): Promise<number> {
  if (preferred && !handedOut.has(preferred)) {
    try {
      return remember(await listenOn(preferred));
    } catch {
      // taken: fall through to any free port
    }
  }
  for (let attempt = 0; ; attempt++) {
    const port = await listenOn(0);
    if (!handedOut.has(port) || attempt >= 20) return remember(port);
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port right now. */
export const portOpen = (port: number, host = '127.0.0.1') =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ port, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
