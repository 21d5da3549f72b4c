"""`segmentkit serve --engine ray`: the IPC service on Ray Serve replicas, a host adapter beside
:mod:`segmentkit.labelstudio`. :mod:`.deployment` (needs ``ray[serve]``) builds the application;
:mod:`.affinity` (no Ray import) picks the replica a message goes to."""
