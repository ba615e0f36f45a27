//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
//! RevokeGrant. Not implemented yet: the dispatch answers
//! UnsupportedOperationException for them. Grant persistence and
//! evaluation come with authorization (the pipeline's authorize step).
