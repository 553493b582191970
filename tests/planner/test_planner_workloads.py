import numpy as np
import pytest

from agentrt.runtime.bench.plan_tasks import problem_of
from agentrt.programs.workloads.planning import codeflow, generate_planning, proofflow
from agentrt.runtime.core.planner import PlanningProblem
from tests.planner.builders import make_cards


def test_codeflow_has_the_published_shape():
    tasks = codeflow(2000, seed=1)
    assert 2.0 < np.mean([len(t.subtasks) for t in tasks]) < 2.4
    assert 1.8 < np.mean([t.depth() for t in tasks]) < 2.05
    assert {s.verifier for t in tasks for s in t.subtasks} == {"unit_tests"}


def test_proofflow_is_a_dag_of_lemmas_closed_by_the_theorem():
    for task in proofflow(300, seed=2):
        ids = [s.subtask_id for s in task.subtasks]
        assert ids[-1] == "thm"
        for i, s in enumerate(task.subtasks):
            assert set(s.deps) <= set(ids[:i])
        used = {d for s in task.subtasks for d in s.deps}
        assert used == set(ids[:-1])  # every lemma serves the proof
        assert {s.verifier for s in task.subtasks} == {"proof_checker"}


@pytest.mark.parametrize("name", ["codeflow", "proofflow"])
def test_generators_are_deterministic_per_seed(name):
    a, b = generate_planning(name, 20, 5), generate_planning(name, 20, 5)
    assert [t.subtasks for t in a] == [t.subtasks for t in b]
    assert [t.subtasks for t in a] != [t.subtasks for t in generate_planning(name, 20, 6)]


def test_unknown_workload_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: \\['codeflow', 'proofflow'\\]"):
        generate_planning("mathflow", 1)


def test_priors_are_noisy_estimates_of_a_hidden_truth():
    subs = [s for t in codeflow(500, seed=3) for s in t.subtasks]
    told = np.array([s.prior["llama-3.1-8b"].p for s in subs])
    true = np.array([s.truth["llama-3.1-8b"].p for s in subs])
    assert 0.5 < np.corrcoef(told, true)[0, 1] < 0.95
    assert abs(told.mean() - true.mean()) < 0.05


def test_the_planner_never_sees_the_truth():
    task = codeflow(1, seed=4)[0]
    cards = make_cards({"llama-3.1-8b": (0.1, 0.2, 0.01), "llama-3.1-70b": (0.6, 0.8, 0.02),
                        "frontier": (3.0, 15.0, 0.025)})
    before = problem_of(task, cards).stats()
    for s in task.subtasks:
        s.truth = {}
    after = problem_of(task, cards).stats()
    assert np.array_equal(before.p_success, after.p_success)
    assert np.array_equal(before.exp_time, after.exp_time)
