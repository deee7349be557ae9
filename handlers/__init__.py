"""HTTP handlers, app factory, auth, error mapping and the operator CLI of orgsettings."""
