"""Which cluster a training process is in: TF_CONFIG, the JAX coordinator variables, the checks."""

import json

import pytest

from keras_arcface.errors import InputError
from keras_arcface.training import TrainConfig
from keras_arcface.training.distribute import Cluster, TrainingPlacement, cluster_from_environment


def tf_config(task_type, index, workers=2, chiefs=0):
    cluster = {"worker": [f"host{k}:2222" for k in range(workers)]}
    if chiefs:
        cluster["chief"] = ["chief0:2222"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


def test_tf_config_names_the_workers_and_the_chief():
    assert cluster_from_environment("auto", "tensorflow", tf_config("worker", 1)) == Cluster(2, 1)
    assert cluster_from_environment("auto", "tensorflow", tf_config("worker", 0)).is_chief
    with_chief = tf_config("worker", 0, workers=2, chiefs=1)
    assert cluster_from_environment("auto", "tensorflow", with_chief) == Cluster(3, 1)  # the chief is index 0
    assert cluster_from_environment("auto", "tensorflow", tf_config("chief", 0, chiefs=1)).is_chief
    assert cluster_from_environment("off", "tensorflow", tf_config("worker", 1)) == Cluster()
    assert cluster_from_environment("auto", "tensorflow", {}) == Cluster()
    assert cluster_from_environment("auto", "jax", tf_config("worker", 1)) == Cluster()  # TF's variable only


def test_jax_variables_name_the_process_and_its_coordinator():
    environ = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert cluster_from_environment("auto", "jax", environ) == Cluster(4, 3, "10.0.0.1:1234")
    assert cluster_from_environment("auto", "tensorflow", environ) == Cluster()


@pytest.mark.parametrize("backend, environ, message", [
    ("tensorflow", {"TF_CONFIG": "{not json"}, "TF_CONFIG must be JSON"),
    ("tensorflow", tf_config("ps", 0), "task type must be 'chief' or 'worker'"),
    ("tensorflow", tf_config("worker", 2), r"task index 2 is not in \[0, 2\)"),
    ("jax", {"JAX_COORDINATOR_ADDRESS": "h:1"}, "missing: JAX_NUM_PROCESSES, JAX_PROCESS_ID"),
    ("jax", {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"},
     r"JAX_PROCESS_ID must be in \[0, JAX_NUM_PROCESSES=2\), got 2"),
    ("jax", {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "integers"),
])
def test_a_bad_cluster_description_is_named(backend, environ, message):
    with pytest.raises(InputError, match=message):
        cluster_from_environment("auto", backend, environ)


def test_multi_worker_on_needs_a_cluster_and_devices_stay_one_in_it(tmp_path):
    with pytest.raises(InputError, match="multi_worker='on' needs a cluster"):
        cluster_from_environment("on", "tensorflow", {})
    with pytest.raises(InputError, match="multi_worker must be one of"):
        TrainConfig(data_dirs=[str(tmp_path)], output_dir=str(tmp_path / "run"), multi_worker="always")
    with pytest.raises(InputError, match="devices=2: in a cluster every worker trains on all of its devices"):
        TrainingPlacement(devices=2, cluster=Cluster(2, 0))
