terraform {
  # Cross-variable validation (a condition naming another variable) needs 1.9.
  required_version = ">= 1.9"
}
