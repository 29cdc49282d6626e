"""The naive baseline: Starlette on uvicorn, `await websocket.send_text()` to each fan in turn.

What a first version of a fan-out endpoint looks like: one task per connection waiting in
`receive()`, and a publish handler that loops over the set. Per-message deflate is off
(uvicorn's default is on, which costs ~2x CPU and 2x memory per connection), so this is
the framework's own cost, not zlib's.

    GET /ws/...       accept, send a small snapshot message, then every broadcast
    POST /publish     body = one message; sent to every fan, then 200
    GET /healthz      200

Usage: python benchmarks/naive_starlette.py --port P [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

try:
    from benchmarks.workload import SNAPSHOT
except ModuleNotFoundError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.workload import SNAPSHOT

fans: set[WebSocket] = set()
snapshot = SNAPSHOT.decode()


async def subscribe(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(snapshot)
    fans.add(websocket)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    finally:
        fans.discard(websocket)


async def publish(request: Request) -> PlainTextResponse:
    text = (await request.body()).decode()
    for websocket in list(fans):
        try:
            await websocket.send_text(text)
        except Exception:
            fans.discard(websocket)
    return PlainTextResponse(str(len(fans)))


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        WebSocketRoute("/ws/{rest:path}", subscribe),
        Route("/publish", publish, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="auto",
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
