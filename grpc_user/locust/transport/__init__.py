"""gevent-compatible unary calls over grpc.aio: an asyncio loop in a greenlet of the Locust process."""
