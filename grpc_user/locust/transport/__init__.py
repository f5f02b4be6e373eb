"""gevent-compatible unary calls over grpc.aio: an asyncio loop whose turns the Locust process's gevent hub runs."""
