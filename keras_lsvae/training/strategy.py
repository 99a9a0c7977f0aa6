"""Distribution strategies by name.

``default`` is TensorFlow's default (one device); ``mirrored`` is ``MirroredStrategy`` over the
visible GPUs, or over ``num_cpu_replicas`` logical CPU devices when there is no GPU (the way the
tests check 1 vs 2 replica parity on CPU machines). Logical CPU devices can only be configured
before TensorFlow initialises its devices: call :func:`configure_cpu_replicas` first.

``multi_worker`` is ``MultiWorkerMirroredStrategy`` over the cluster that the ``TF_CONFIG``
environment variable describes (every worker runs the same command with its own ``task``
index); all local GPUs of each worker are replicas. Keras 3's ``fit`` fails under it
(keras-team/keras#20585; with Keras 3.15 / TF 2.21 it raises "Attempt to convert a value
(PerReplica...) to a Tensor" while building the model), so the training loop drives it with its
own ``strategy.run`` loop (`keras_lsvae.training.distributed`). Like every collective strategy
it must be created before TensorFlow runs its first op: ``scripts/train.py`` does so first.
Its coordination service declares a worker dead after :data:`HEARTBEAT_TIMEOUT_SECONDS` without
a heartbeat instead of TF's 10 s, which aborted healthy workers on busy machines.

``tpu`` is ``TPUStrategy`` on the TPU named by ``$TPU_NAME`` (a Cloud TPU node's name or
address), or on the TPU VM the process runs on without it (``TPUClusterResolver(tpu="local")``).
Training on a TPU is untested here (the project's machines have none); without a TPU it fails
at once, before any model or file exists, with a message that says what was tried and how to
point it at a TPU (tests/test_training.py).
"""

from __future__ import annotations

import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def configure_cpu_replicas(count: int) -> None:
    """Split the physical CPU into ``count`` logical devices (no-op for count <= 1)."""
    if count <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    existing = tf.config.get_logical_device_configuration(cpus[0])
    if existing and len(existing) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError as error:
        raise RuntimeError(
            f"cannot create {count} CPU replicas after TensorFlow has initialised its devices; "
            "configure them at program start") from error


# One MirroredStrategy per device set and process: two live instances over the same devices
# interleave their collective all-reduces and abort with shape mismatches (seen when a second
# run started in the same process).
_MIRRORED = {}
_MULTI_WORKER = []


def get_strategy(name: str = "default", num_cpu_replicas: int = 1) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            devices = tuple(d.name for d in tf.config.list_logical_devices("GPU"))
        else:
            configure_cpu_replicas(num_cpu_replicas)
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            devices = tuple(cpus[:max(1, num_cpu_replicas)])
        if devices not in _MIRRORED:
            _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
        return _MIRRORED[devices]
    if name == "multi_worker":
        if not _MULTI_WORKER:  # one per process: it configures the process's collective ops
            _configure_coordination_service()
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
            # It logs a line at INFO per all-reduce it builds (hundreds per traced step),
            # which absl's handler (scripts/train.py) prints.
            tf.get_logger().setLevel("WARNING")
        return _MULTI_WORKER[0]
    if name == "tpu":
        return _tpu_strategy()
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")


#: Seconds without a heartbeat after which the workers' coordination service declares a worker
#: dead and aborts every collective (TF's default: 10 s). Measured: 2 workers on 2 CPU cores
#: shared with other jobs (load average 6) aborted in the first step of the conv-network test
#: (tests/test_multiworker.py) with "Task /job:worker/replica:0/task:1 heartbeat timeout"
#: while both were alive, compiling the step. Reproduced by freezing one of 2 toy2d workers
#: (SIGSTOP) for 30 s: both abort ("The following tasks are unhealthy (stopped sending
#: heartbeats)") with TF's 10 s, both finish with 120 s. A worker that really dies is noticed
#: this much later.
HEARTBEAT_TIMEOUT_SECONDS = 120


def _configure_coordination_service() -> None:
    """What ``MultiWorkerMirroredStrategy`` configures itself when the ``TF_CONFIG`` task is a
    chief or worker (TF 2.21, ``collective_all_reduce_strategy``: a standalone coordination
    service led by the chief, else worker 0, over the chief and worker jobs), with
    :data:`HEARTBEAT_TIMEOUT_SECONDS` instead of TF's 10 s. The strategy keeps a service that
    is already configured. Needs TF internals (no public API sets the timeout): if they
    change, TF's own configuration applies."""
    try:
        from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
        from tensorflow.python.eager import context
    except ImportError:
        return
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    jobs = [job for job in ("chief", "worker") if job in spec.jobs]
    if (not jobs or resolver.task_type not in jobs or "ps" in spec.jobs
            or context.context().coordination_service is not None):
        return
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{jobs[0]}/replica:0/task:0",
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(
            name=job, num_tasks=spec.num_tasks(job)) for job in jobs],
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_SECONDS * 1000)


def _tpu_strategy() -> tf.distribute.TPUStrategy:
    """TF's TPU guide's set-up, failing with a ValueError that says what was tried when there
    is no TPU. Without one, TF's own error is a traceback ending in "TPUs not found in the
    cluster. Failed in initialization: No OpKernel was registered to support Op
    'ConfigureDistributedTPU'" (measured on a CPU machine, TF 2.21), which names no flag or
    variable; it comes before any model or file exists (``train_model`` makes the strategy
    first), and so does this one (tests/test_training.py)."""
    tpu = os.environ.get("TPU_NAME") or "local"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, ImportError, tf.errors.OpError) as error:
        tried = (f"the TPU named by $TPU_NAME={tpu!r}" if tpu != "local" else
                 "a TPU attached to this machine (TPUClusterResolver(tpu='local'), as on a TPU "
                 "VM; $TPU_NAME is not set)")
        detail = (str(error).strip().splitlines() or [""])[0].split(" used by ")[0][:300]
        raise ValueError(
            f"--strategy=tpu: no TPU found: tried {tried} and failed with "
            f"{type(error).__name__}: {detail}. On a TPU VM, run on the VM itself; to use a "
            "Cloud TPU node, set $TPU_NAME to its name or address (e.g. grpc://10.0.0.2:8470). "
            "Without a TPU use --strategy=default, or --strategy=mirrored for several GPUs or "
            "CPU replicas.") from error
    return tf.distribute.TPUStrategy(resolver)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True for ``MultiWorkerMirroredStrategy`` (Keras' ``fit`` does not work under it)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files: always, except on a multi-worker cluster,
    where only the ``chief`` task does, or worker 0 when the cluster has no ``chief`` job (the
    convention of TF's multi-worker guide). The other workers still run every save (saving
    reads variables that may need a collective all-reduce, which every worker must join) but
    into a scratch directory."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multi_worker(strategy) or resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief

