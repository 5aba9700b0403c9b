"""The engine: what the service does, free of aiohttp (HTTP is the api layer's business).

Beside :mod:`service.contexts` (labels and contexts): cursors.py (iterkeys), models.py
(train, score, predict), modules.py and workers.py (module functions in worker processes),
uploads.py, configure.py, state/ (the state store), tasks/ (the task manager and executors),
pipelines/ (pipelines, runs and jobs).
"""
