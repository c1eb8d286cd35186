"""Suite and task files: YAML → validated, typed values → the grid of trials.

A *task file* ``tasks/<name>.yaml`` holds the fields of :class:`~ntkbench.config.TaskConfig`
(``name`` defaults to the file name and must match it)::

    name: oscillatory_1d
    description: 1-D regression of a chirp
    data: {generator: oscillatory_1d, params: {n_train: 256, noise: 0.0}}
    model: {width: 256, depth: 2, activation: relu}
    training: {optimizer: gd, lr: 0.1, steps: 1000}
    measure: {checkpoints: 25}
    metric: test_mse

A *suite file* (``benchmarks.yaml``) names tasks, initializers, backends, seeds and optional
sweep axes; :meth:`Suite.trials` expands them into the grid
``tasks × initializers × backends × seeds × product(sweep values)``::

    name: default
    seeds: 3                       # n → 0..n-1, or an explicit list [0, 1, 2]
    backends: [torch]              # default [torch]
    device: auto                   # auto | cpu | cuda | cuda:N
    tasks:
      - oscillatory_1d             # tasks/<name>.yaml, next to the suite or built in
      - name: targets_2d           # ... with overrides: params → data.params,
        params: {n_train: 1024}    # model / training / measure are partial, metric replaces
        model: {width: 512}
    initializers:
      - he_normal
      - {name: normal, params: {std: 0.05}}
      - {name: my_init, source: plugins/my_init.py:my_init}   # relative to the suite file
    sweep:                         # extra grid axes
      model.width: [256, 1024]     # model.* / training.* / measure.* fields
      data.noise: [0.0, 0.1]       # a data parameter, for the tasks whose generator declares it
      initializer.std: [0.01, 0.1] # an initializer parameter, for those that declare it
    variants:                      # load_suite(path, variant="full"): see spec.variants
      full: {seeds: 5, tasks: {targets_2d: {model: {width: 2048}}}}

Everything is checked before anything runs: YAML syntax, types, unknown names (with the closest
known ones suggested), parameters against what each generator and initializer declares, and each
initializer once on a small dummy layer so that a bad value (``std: -1``) fails here. All problems
of a suite are collected into one :class:`SpecError` whose lines read
``file:line: field: message``.
"""

from ntkbench.spec.errors import Problem, SpecError
from ntkbench.spec.grid import Suite
from ntkbench.spec.locations import default_suite_path, suite_path, task_search_dirs
from ntkbench.spec.suite import load_suite
from ntkbench.spec.task import load_task

__all__ = ["Problem", "SpecError", "Suite", "default_suite_path", "load_suite", "load_task",
           "suite_path", "task_search_dirs"]
