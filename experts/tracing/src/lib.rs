//! Attack-tracing expert: provenance graph over process, logon, network and file events, root cause, attack path and group attribution.
