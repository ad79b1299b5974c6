"""Studies with their own production schemas, generators and analyses (one package per study)."""
