"""What ran out of CPU first in a load run: the machine, one role's processes, or nothing."""

import pytest

from simulator.load.report import cpu_use


def test_a_machine_whose_cores_were_all_busy_is_the_bound() -> None:
    use = cpu_use({"umpire": 9.5, "generators": 9.0, "broker": 0.5}, 10.0, {"generators": 2}, 2)
    assert use["cores_busy"] == {"umpire": 0.95, "generators": 0.9, "broker": 0.05}
    assert use["cores_busy_here"] == 1.9
    assert use["bound"] == "machine"
    assert use["why"] == "the machine (1.9 of its 2 cores busy)"


def test_one_umpire_process_that_kept_a_core_busy_is_the_bound() -> None:
    use = cpu_use({"umpire": 9.8, "generators": 4.0, "broker": 0.4}, 10.0, {"generators": 2}, 4)
    assert use["bound"] == "umpire"
    assert use["why"] == "the umpire (its process kept a core 98% busy)"


def test_a_role_counts_per_process_not_in_all() -> None:
    """Two generator processes at 60% each kept no core busy, though together 1.2 cores."""
    use = cpu_use({"umpire": 3.0, "generators": 12.0}, 10.0, {"generators": 2, "umpire": 1}, 8)
    assert use["cores_busy"]["generators"] == 1.2
    assert use["bound"] is None
    assert use["why"].startswith("nothing")
    busy = cpu_use({"umpire": 3.0, "generators": 18.0}, 10.0, {"generators": 2}, 8)
    assert busy["bound"] == "generators"
    assert busy["why"] == "the generators (each of its 2 processes kept a core 90% busy)"


def test_the_busiest_role_per_process_is_named_when_several_ran_out() -> None:
    use = cpu_use({"umpire": 8.6, "generators": 9.5}, 10.0, {"generators": 1}, 8)
    assert use["bound"] == "generators"


def test_roles_on_other_machines_do_not_count_against_this_one() -> None:
    """Generators started elsewhere (--worker-command) use other machines' cores."""
    cpu = {"umpire": 6.0, "generators": 16.0, "broker": 0.5}
    assert cpu_use(cpu, 10.0, {"generators": 4}, 2)["bound"] == "machine"
    away = cpu_use(cpu, 10.0, {"generators": 4}, 2, elsewhere=("generators",))
    assert away["cores_busy_here"] == 0.65
    assert away["bound"] is None


def test_the_runner_of_a_partitioned_run_is_counted_but_not_blamed() -> None:
    """Its CPU is the machine's, but it does not decide or generate: never `bound` alone."""
    use = cpu_use({"umpire": 3.0, "generators": 2.0, "runner": 9.5}, 10.0, {"umpire": 2}, 8)
    assert use["cores_busy"]["runner"] == 0.95
    assert use["bound"] is None


@pytest.mark.parametrize("wall", [0.0, -1.0])
def test_a_run_of_no_time_does_not_divide_by_zero(wall: float) -> None:
    assert cpu_use({"umpire": 0.0}, wall, {}, 2)["cores_busy"] == {"umpire": 0.0}
