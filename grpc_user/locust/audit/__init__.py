"""The delivery audit: did the service store every log it acknowledged? And the target's preflight."""
