"""A loopback TCP proxy that adds a fixed delay to every HTTP request, to stand in for a
remote object store: ``python benchmarks/_latency_proxy.py UPSTREAM_PORT DELAY_MS``.

It prints ``listening <port>`` once ready. Each connection is relayed both ways; the first
bytes of each request (client data arriving after the previous response) wait ``DELAY_MS``
before they are forwarded, so a request's round trip grows by the delay however large its
body. Run as its own process so the proxy's work does not share a GIL with what it measures.
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    state: dict[str, bool],
    *,
    delay: float,
    requests: bool,
) -> None:
    try:
        while chunk := await reader.read(65536):
            if requests and state["idle"]:
                state["idle"] = False
                await asyncio.sleep(delay)
            elif not requests:
                state["idle"] = True  # a response: the next client bytes start a request
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _serve(upstream: int, delay: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        state = {"idle": True}
        await asyncio.gather(
            _pipe(reader, up_writer, state, delay=delay, requests=True),
            _pipe(up_reader, writer, state, delay=delay, requests=False),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), float(sys.argv[2]) / 1000))
