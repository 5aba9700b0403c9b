"""The inference front: the Open Inference Protocol (KServe V2) over model contexts
(protocol.py, tensors.py). No aiohttp here: service/api/handlers/inference.py speaks HTTP."""
