"""The Locust plugin: ``GrpcUser``, its run lifecycle, counts, audit, web UI, workloads, open model and
capacity search. Importing it loads Locust (and gevent's monkey-patching); the client in ``grpc_user`` does not."""
