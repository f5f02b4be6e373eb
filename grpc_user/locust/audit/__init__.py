"""The delivery audit: did the service store every log it acknowledged? (The target's preflight is
``grpc_user.locust.preflight``.)"""
