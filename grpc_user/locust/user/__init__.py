"""The user and its client: ``GrpcUser``, ``self.client`` (one request event per RPC), failures by cause."""
