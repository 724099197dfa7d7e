"""`supervisor check`: the run, the verdicts, the JUnit report."""
