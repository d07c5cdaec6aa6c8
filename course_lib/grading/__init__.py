"""Exercises, student versions and autograding, built on otter-grader.

    course assign 00_start --out handout        # student versions + autograder bundles
    course grade --assignment handout/00_start/00_getting_started/autograder \\
                 submissions/*.ipynb --out grades.csv

- `assign` (`course_lib.grading.assign`): `otter assign`, a Colab-ready student version, the
  manifest that grading reads.
- `grade` (`course_lib.grading.grader`): rebuilds each submission from the student version,
  runs it in a sandboxed kernel (`course_lib.grading.kernel`, `course_lib.sandbox`) and its
  tests outside it (`course_lib.grading.scoring`), joined by a channel that carries only data
  (`course_lib.grading.wire`).
- `in_kernel`: marks a test's probe, which runs beside the answers.
"""

from course_lib.grading.assign import (
    ANSWER_TAG,
    CONFIG_MARKER,
    MANIFEST,
    OTTER_INIT,
    STUDENT_VERSION,
    answer_names,
    assign,
    has_exercises,
)
from course_lib.grading.grader import grade, grade_one, rebuild
from course_lib.grading.scoring import in_kernel

__all__ = ["ANSWER_TAG", "CONFIG_MARKER", "MANIFEST", "OTTER_INIT", "STUDENT_VERSION",
           "answer_names", "assign", "grade", "grade_one", "has_exercises", "in_kernel",
           "rebuild"]
