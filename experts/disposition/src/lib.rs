//! Disposition expert: prioritised response plans from alerts, attack chains and asset context, emitted as OASIS CACAO 2.0 playbooks.
