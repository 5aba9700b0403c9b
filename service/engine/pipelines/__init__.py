"""Pipelines of module functions (MLsploit): a pipeline is an ordered list of tasks, a run
applies one to input files, and a job holds one task's output for one run.

``model`` holds the records and their JSON, ``repository`` their tables in the state store,
``validate`` checks what clients send against the module functions' declarations, ``jobs`` runs
one job on the executor, ``runner`` drives runs (chaining, failure propagation, cancel, retry,
events, restart recovery).
"""
