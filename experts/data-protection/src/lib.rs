//! Data-protection expert: PII and secret detection with validators, document classification and redaction.
