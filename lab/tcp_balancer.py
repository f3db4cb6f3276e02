"""A TCP load balancer for the lab's HA Prefect topology: one address for clients, each new
connection to the next API server that accepts it (a dead one is skipped).

    python -m opsflow.lab.tcp_balancer --port 14200 --to 127.0.0.1:14201 --to 127.0.0.1:14202

It works below HTTP, so websockets (Prefect's events) pass as they are; a connection to a
server that dies breaks, and the client's retry lands on a live one. A lab stand-in for the
load balancer an HA deployment puts in front of its API servers (nginx, a cloud LB).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

CONNECT_TIMEOUT = 1.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def serve(port: int, backends: list[tuple[str, int]]) -> None:
    turn = itertools.cycle(range(len(backends)))

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        start = next(turn)
        for offset in range(len(backends)):
            host, backend_port = backends[(start + offset) % len(backends)]
            try:
                server_r, server_w = await asyncio.wait_for(
                    asyncio.open_connection(host, backend_port), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                continue
            await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))
            return
        client_w.close()  # no server accepts: the client sees a refused connection

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", action="append", required=True, help="HOST:PORT of a server")
    args = parser.parse_args()
    serve(args.port, [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in args.to])
