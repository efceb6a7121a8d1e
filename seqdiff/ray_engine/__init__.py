"""Batch imputation and batch design on Ray Data: ``--engine ray`` of ``seqdiff impute`` and ``design``.

Ray is an optional extra (``pip install 'seqdiff[ray]'``), imported only when this engine runs, so
``import seqdiff`` and the local engine work without it. Torch too is imported only inside the
functions: the command line reads ``DEFAULT_RAY_TIMEOUT`` from here while it builds its parser.

Each engine calls one batch function on one unit of work, given the unit's global offset:
`seqdiff.tabular.stream.impute_batch` on rows ``first_row ..`` of a Parquet file, and
`seqdiff.protein.design.design` on jobs ``first_job ..`` of a job list. The sampler's noise is keyed
by global row / job number, and the units are exactly the local engine's batches (rows
``[k * batch_rows, (k + 1) * batch_rows)``, jobs ``[k * batch_size, (k + 1) * batch_size)``), so the
Ray engine writes what the local engine writes at the same seed, whatever the number of actors.

A pool of actors (``map_batches`` with a callable class) loads the model once per actor; the model
travels to them as bundle bytes through Ray's object store, so it need not be on a shared disk. The
driver (this process) receives the units' results in order and writes the output atomically.

Ray being optional, only ``read_rows`` and ``check_ray_input`` (which need no Ray) have runnable examples. With
``imputer = MaskedDiffusionImputer.load("runs/adult-imputer")``,
``impute_file_ray("adult_holed.parquet", "adult_imputed.parquet", imputer, actors=4)`` starts a local
cluster, imputes the file with 4 actors and returns the ``StreamReport`` that ``impute_file`` would.
"""

from seqdiff.ray_engine.pool import DEFAULT_RAY_TIMEOUT, ray_cluster, require_ray, start_local_cluster
from seqdiff.ray_engine.proteins import design_ray
from seqdiff.ray_engine.tables import check_ray_input, impute_file_ray, read_rows

__all__ = [
    "DEFAULT_RAY_TIMEOUT",
    "check_ray_input",
    "design_ray",
    "impute_file_ray",
    "ray_cluster",
    "read_rows",
    "require_ray",
    "start_local_cluster",
]
