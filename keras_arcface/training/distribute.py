"""Where training runs: one device, the devices of one machine, or a cluster of worker processes.

TensorFlow: ``MirroredStrategy`` on one machine, ``MultiWorkerMirroredStrategy`` over the workers
``TF_CONFIG`` names.  JAX: ``keras.distribution.DataParallel`` (or, for Partial FC, ``ModelParallel``
with the class centres sharded over the devices) over this process' devices or, after
``jax.distributed.initialize``, over every process' devices.  In a cluster each worker reads only
its shard of every global batch and worker 0 (the chief) writes every file.
"""

import contextlib
import dataclasses
import json
import os
import tempfile

import keras

from keras_arcface.errors import InputError

#: ``TrainConfig.multi_worker``: "auto" joins the cluster the environment names (if any), "off" trains in
#: this process alone, "on" fails without a cluster.
MULTI_WORKER_MODES = ("auto", "off", "on")

#: The environment variables that place a JAX process in a cluster.
JAX_CLUSTER_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process' place among ``workers`` training processes; ``index`` 0 is the chief.
    ``coordinator``: the JAX coordinator's ``host:port`` (TensorFlow reads ``TF_CONFIG`` itself);
    ``key``: the same text in every process of one cluster (its addresses), empty for one process."""

    workers: int = 1
    index: int = 0
    coordinator: str = ""
    key: str = dataclasses.field(default="", compare=False)

    @property
    def is_chief(self):
        return self.index == 0


def tf_config_cluster(text):
    """The :class:`Cluster` of a ``TF_CONFIG`` value: its "chief" and "worker" tasks, chief first."""
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config.get("cluster", {}), tf_config.get("task", {})
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        task_type, task_index = task.get("type"), int(task.get("index", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise InputError(f'TF_CONFIG must be JSON like {{"cluster": {{"worker": ["host:port", ...]}}, "task": '
                         f'{{"type": "worker", "index": 0}}}}, got {text[:300]!r}') from None
    if task_type not in ("chief", "worker"):
        raise InputError(f"TF_CONFIG's task type must be 'chief' or 'worker' (every task trains), got {task_type!r}")
    index = task_index if task_type == "chief" else len(chiefs) + task_index
    listed = len(chiefs if task_type == "chief" else workers)
    if not 0 <= task_index < listed:
        raise InputError(f"TF_CONFIG's task index {task_index} is not in [0, {listed}), the {task_type} tasks it lists")
    return Cluster(len(chiefs) + len(workers), index, key=json.dumps({"chief": chiefs, "worker": workers}))


def jax_cluster(environ):
    """The :class:`Cluster` of ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``."""
    values = {name: environ.get(name, "") for name in JAX_CLUSTER_VARIABLES}
    if not any(values.values()):
        return Cluster()
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise InputError(f"a JAX cluster needs {', '.join(JAX_CLUSTER_VARIABLES)}; missing: {', '.join(missing)}")
    try:
        workers, index = int(values["JAX_NUM_PROCESSES"]), int(values["JAX_PROCESS_ID"])
    except ValueError:
        raise InputError(f"JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers, got {values}") from None
    if workers < 1 or not 0 <= index < workers:
        raise InputError(f"JAX_PROCESS_ID must be in [0, JAX_NUM_PROCESSES={workers}), got {index}")
    return Cluster(workers, index, values["JAX_COORDINATOR_ADDRESS"],
                   key=f"{values['JAX_COORDINATOR_ADDRESS']} x {workers}")


def cluster_from_environment(mode="auto", backend=None, environ=None):
    """The cluster this process trains in: ``TF_CONFIG`` on TensorFlow, :data:`JAX_CLUSTER_VARIABLES`
    on JAX; a cluster of one when they are unset or ``mode`` is "off"."""
    if mode not in MULTI_WORKER_MODES:
        raise InputError(f"multi_worker must be one of {MULTI_WORKER_MODES}, got {mode!r}")
    environ = os.environ if environ is None else environ
    backend = backend or keras.backend.backend()
    cluster = Cluster()
    if mode != "off" and backend == "tensorflow" and environ.get("TF_CONFIG"):
        cluster = tf_config_cluster(environ["TF_CONFIG"])
    elif mode != "off" and backend == "jax":
        cluster = jax_cluster(environ)
    if mode == "on" and cluster.workers == 1:
        raise InputError("multi_worker='on' needs a cluster of several workers: TF_CONFIG on TensorFlow, "
                         f"{', '.join(JAX_CLUSTER_VARIABLES)} on JAX")
    return cluster


def available_devices():
    """Accelerators when present, else CPUs (logical CPUs on TensorFlow count)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return [device.name for device in devices]
    if backend == "jax":
        import jax

        return list(jax.devices())
    return ["cpu"]


def _start_jax_cluster(cluster):
    import jax

    if jax.distributed.is_initialized():
        return
    try:
        jax.distributed.initialize(cluster.coordinator, cluster.workers, cluster.index)
    except RuntimeError as error:
        raise InputError(f"could not join the JAX cluster at {cluster.coordinator} as process {cluster.index} of "
                         f"{cluster.workers} (join before any JAX computation in this process): {error}") from error


def check_batch_divides(batch_size, replicas, workers=1):
    """The global batch must split evenly over the replicas and over the workers' input pipelines."""
    if batch_size % replicas or batch_size % workers:
        raise InputError(f"batch_size {batch_size} must be divisible by the {replicas} replicas over {workers} "
                         "worker(s)")


class TrainingPlacement:
    """The devices one training run uses and how its batches reach them.

    ``devices`` > 1 on one machine: ``MirroredStrategy`` over that many (TensorFlow) or
    ``DataParallel`` (JAX).  A :class:`Cluster` of several workers: every worker trains on all of
    its devices (``devices`` must stay 1) with ``MultiWorkerMirroredStrategy`` (TensorFlow) or
    DataParallel over every process' devices (JAX).  ``partial_fc_shards``: the ``num_shards`` of a
    Partial FC head named "head"; on JAX, when it is a multiple of the devices, the head's class
    centres are sharded over them (``ModelParallel``, the batch split over the same devices, as in
    arcface_torch); otherwise every device holds all of them.  ``batch_size``: the global batch, checked to
    split evenly over the replicas and the workers' input pipelines.
    """

    def __init__(self, devices=1, cluster=Cluster(), partial_fc_shards=0, batch_size=None):
        self.cluster = cluster
        self.backend = keras.backend.backend()
        self.strategy = None
        self.replicas = 1
        self.sharded_head = False
        if cluster.workers > 1 and devices != 1:
            raise InputError(f"devices={devices}: in a cluster every worker trains on all of its devices (choose "
                             "them with CUDA_VISIBLE_DEVICES); leave devices at 1")
        if self.backend == "tensorflow":
            self._place_on_tensorflow(devices)
        elif self.backend == "jax":
            self._place_on_jax(devices, partial_fc_shards)
        elif devices > 1 or cluster.workers > 1:
            raise InputError(f"multi-device training is not supported on backend {self.backend}")
        if batch_size is not None:  # the one check of the global batch, where replicas and workers are known
            check_batch_divides(batch_size, self.replicas, self.cluster.workers)

    def _place_on_tensorflow(self, devices):
        import tensorflow as tf

        if self.cluster.workers > 1:
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
        elif devices > 1:
            chosen = self._choose(devices)
            # On CPUs, reduce through one device: TF's CPU collectives cache each instance key's
            # shape per process, so a second MirroredStrategy training of another model in the same
            # process fails with "Shape mismatch in the collective instance 100".
            cross_device_ops = (tf.distribute.ReductionToOneDevice() if all("CPU" in d for d in chosen)
                                else None)
            self.strategy = tf.distribute.MirroredStrategy(chosen, cross_device_ops=cross_device_ops)
        if self.strategy is not None:
            self.replicas = self.strategy.num_replicas_in_sync

    def _place_on_jax(self, devices, partial_fc_shards):
        import jax

        if self.cluster.workers > 1:
            _start_jax_cluster(self.cluster)
            chosen = jax.devices()
        else:
            chosen = self._choose(devices)
        self.replicas = len(chosen)
        if self.replicas == 1:
            return
        # auto_shard_dataset=False: each process already reads only its shard (training_input).
        self.sharded_head = bool(partial_fc_shards) and partial_fc_shards % self.replicas == 0
        if self.sharded_head:
            from keras_arcface.heads.partial_fc import partial_fc_layout_map

            mesh = keras.distribution.DeviceMesh((len(chosen),), ["batch"], chosen)
            distribution = keras.distribution.ModelParallel(
                layout_map=partial_fc_layout_map(mesh, head_name="head", model_axis="batch"),
                batch_dim_name="batch", auto_shard_dataset=False)
        else:
            distribution = keras.distribution.DataParallel(devices=chosen, auto_shard_dataset=False)
        keras.distribution.set_distribution(distribution)

    @staticmethod
    def _choose(devices):
        found = available_devices()
        if len(found) < devices:
            raise InputError(f"{devices} devices requested, {len(found)} available: {found}")
        return found[:devices]

    @property
    def writes(self):
        """Whether this process writes the run's files (the chief does; the workers share the folder)."""
        return self.cluster.is_chief

    def save_weights(self, model, path, save=None):
        """``save(path)`` (default ``model.save_weights``) on the chief only.  In a JAX cluster every
        process takes part: Keras' weight saving creates a variable (a cross-process check there), and
        the class centres of a sharded head are first gathered from every process; the others save
        to a throwaway file."""
        save = save or model.save_weights
        if self.backend != "jax" or self.cluster.workers == 1:
            if self.writes:
                save(path)
            return
        with _gathered_variables(model):
            if self.writes:
                save(path)
            else:
                with tempfile.TemporaryDirectory() as folder:
                    model.save_weights(os.path.join(folder, "discarded.weights.h5"))

    def scope(self):
        """The context to build and compile the model in."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def every_worker(self, value):
        """The integer ``value`` as each replica of each worker has it, in order (in a cluster a
        collective: every worker must call it)."""
        if self.cluster.workers == 1:
            return [int(value)]
        if self.backend == "jax":
            import numpy as np
            from jax.experimental import multihost_utils

            return [int(v) for v in np.ravel(multihost_utils.process_allgather(np.array([value], np.int32)))]
        import tensorflow as tf

        per_replica = self.strategy.run(lambda: tf.constant([int(value)], tf.int32))
        return [int(v) for v in self.strategy.gather(per_replica, axis=0).numpy()]

    def training_input(self, make_batches, batch_size):
        """What ``fit`` reads; ``make_batches(shard)`` returns the ``FaceBatches`` of ``shard = (index,
        count)``.  TensorFlow: a ``tf.data`` pipeline over the batches (each worker's shard of them in a
        cluster, split into per-replica batches and distributed by the strategy).  JAX: this process'
        ``FaceBatches`` (in a cluster Keras assembles the global batch from the processes' shares)."""
        if self.backend != "tensorflow":
            return make_batches((self.cluster.index, self.cluster.workers))
        if self.cluster.workers == 1:
            return epoch_dataset(make_batches((0, 1)))
        return self.strategy.distribute_datasets_from_function(lambda context: epoch_dataset(
            make_batches((context.input_pipeline_id, context.num_input_pipelines)),
            context.get_per_replica_batch_size(batch_size)))


@contextlib.contextmanager
def _gathered_variables(model):
    """Every variable of ``model`` (and its optimizer) whose value is sharded over several processes
    holds the whole value, gathered from all of them, inside this context (a collective: every
    process enters it)."""
    from jax.experimental import multihost_utils

    variables = list(model.variables)
    if getattr(model, "optimizer", None) is not None:
        variables += [v for v in model.optimizer.variables if all(v is not w for w in variables)]
    sharded = [v for v in variables if not v.value.is_fully_addressable and not v.value.is_fully_replicated]
    originals = [v._value for v in sharded]
    try:
        for variable in sharded:
            variable._value = multihost_utils.process_allgather(variable.value, tiled=True)
        yield
    finally:
        for variable, original in zip(sharded, originals):
            variable._value = original


def epoch_dataset(batches, per_replica_batch=None):
    """``batches`` (a ``FaceBatches``) as a ``tf.data.Dataset`` that ``fit`` reads once per epoch, in the
    epoch ``batches.epoch`` says (:class:`~keras_arcface.training.callbacks.DataEpoch` sets it).  Keras
    3.15's own PyDataset reader on TensorFlow calls ``on_epoch_end`` once before the first epoch, after
    reading two batches for their shapes, so epoch ``e`` trained on permutation ``e + 1``; and a first-
    batch peek that prefetches a whole small epoch would advance an epoch counted by the reader.
    ``per_replica_batch``: re-batch to that size (several replicas on this worker)."""
    import tensorflow as tf

    signature = tf.nest.map_structure(lambda array: tf.TensorSpec(array.shape, tf.as_dtype(array.dtype)),
                                      batches[0])

    def generate():
        for index in range(len(batches)):
            yield batches[index]

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    rows = tf.nest.flatten(signature)[0].shape[0]
    steps = len(batches)
    if per_replica_batch and per_replica_batch != rows:
        dataset = dataset.unbatch().batch(per_replica_batch, drop_remainder=True)
        steps *= rows // per_replica_batch
    # A known length: with an unknown one fit() calls the step once more at the end of each epoch,
    # and the stateful ops that do not wait for the data (SphereFace's step counter) run before the
    # end-of-data error stops it.
    return dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)
