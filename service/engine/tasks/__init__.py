"""Work that outlives a request: executors run it, the task manager tracks it."""
