// The default policy of Petrel's identity API. The rule names and check strings are
// OpenStack Keystone's secure-RBAC defaults (keystone/common/policies/*.py on master), with
// the shared constants of base.py expanded, so that a Keystone policy file means the same
// thing here. Descriptions are Petrel's own.

import PetrelCore

/// Keystone's secure-RBAC defaults (project-scoped admins are cloud admins; system, domain
/// and project readers; domain managers), the built-in policy of Petrel's identity API.
public enum KeystonePolicy {
    /// Every default: the core resources' below, then each extension's (OS-TRUST, OS-EP-FILTER, …)
    /// from its own file.
    public static let defaults: [PolicyDefault] = core + delegationDefaults + projectTagDefaults + catalogExtensionDefaults

    static let core: [PolicyDefault] = [
        // MARK: Base rules other rules refer to
        PolicyDefault("admin_required", "role:admin or is_admin:1", "Whoever has the admin role."),
        PolicyDefault("service_role", "role:service", "Whoever has the service role."),
        PolicyDefault("service_or_admin", "rule:admin_required or rule:service_role", "An admin or a service user."),
        PolicyDefault("owner", "user_id:%(user_id)s", "The user the request names (user_id in the URL) is the caller."),
        PolicyDefault("admin_or_owner", "rule:admin_required or rule:owner", "An admin, or the caller acting on their own user."),
        PolicyDefault("token_subject", "user_id:%(target.token.user_id)s", "The caller is the user the token in question belongs to."),
        PolicyDefault("admin_or_token_subject", "rule:admin_required or rule:token_subject", "An admin, or the caller acting on their own token."),
        PolicyDefault("service_admin_or_token_subject", "rule:service_or_admin or rule:token_subject", "An admin, a service user, or the caller acting on their own token."),
        PolicyDefault("domain_managed_target_role", "'manager':%(target.role.name)s or 'member':%(target.role.name)s or 'reader':%(target.role.name)s", "The roles a domain manager may assign or revoke (manager, member, reader)."),

        // MARK: Tokens
        PolicyDefault("identity:check_token", "rule:admin_required or (role:reader and system_scope:all) or rule:token_subject", "Check that a token is valid.", ["HEAD /v3/auth/tokens"]),
        PolicyDefault("identity:validate_token", "rule:admin_required or (role:reader and system_scope:all) or rule:service_role or rule:token_subject", "Validate a token and show its contents.", ["GET /v3/auth/tokens"]),
        PolicyDefault("identity:revoke_token", "rule:admin_required or rule:token_subject", "Revoke a token.", ["DELETE /v3/auth/tokens"]),

        // MARK: Token revocation list (deprecated)
        PolicyDefault("identity:revocation_list", "rule:service_or_admin", "List revoked PKI tokens (deprecated; the API answers 410).", ["GET /v3/auth/tokens/OS-PKI/revoked"]),

        // MARK: Auth discovery
        PolicyDefault("identity:get_auth_catalog", "", "Show the service catalog for the current token.", ["GET /v3/auth/catalog", "HEAD /v3/auth/catalog"]),
        PolicyDefault("identity:get_auth_projects", "", "List the projects the caller may scope to.", ["GET /v3/auth/projects", "HEAD /v3/auth/projects"]),
        PolicyDefault("identity:get_auth_domains", "", "List the domains the caller may scope to.", ["GET /v3/auth/domains", "HEAD /v3/auth/domains"]),
        PolicyDefault("identity:get_auth_system", "", "List the system scopes the caller may use.", ["GET /v3/auth/system", "HEAD /v3/auth/system"]),

        // MARK: Domains
        PolicyDefault("identity:get_domain", "rule:admin_required or (role:reader and system_scope:all) or token.domain.id:%(target.domain.id)s or token.project.domain.id:%(target.domain.id)s", "Show a domain.", ["GET /v3/domains/{domain_id}"]),
        PolicyDefault("identity:list_domains", "rule:admin_required or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain.id)s)", "List domains.", ["GET /v3/domains"]),
        PolicyDefault("identity:create_domain", "rule:admin_required", "Create a domain.", ["POST /v3/domains"]),
        PolicyDefault("identity:update_domain", "rule:admin_required", "Update a domain.", ["PATCH /v3/domains/{domain_id}"]),
        PolicyDefault("identity:delete_domain", "rule:admin_required", "Delete a domain.", ["DELETE /v3/domains/{domain_id}"]),

        // MARK: Projects
        PolicyDefault("identity:get_project", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s", "Show a project.", ["GET /v3/projects/{project_id}"]),
        PolicyDefault("identity:list_projects", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)", "List projects.", ["GET /v3/projects"]),
        PolicyDefault("identity:list_user_projects", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s", "List the projects a user has roles on.", ["GET /v3/users/{user_id}/projects"]),
        PolicyDefault("identity:create_project", "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)", "Create a project.", ["POST /v3/projects"]),
        PolicyDefault("identity:update_project", "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)", "Update a project.", ["PATCH /v3/projects/{project_id}"]),
        PolicyDefault("identity:delete_project", "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)", "Delete a project.", ["DELETE /v3/projects/{project_id}"]),

        // MARK: Users
        PolicyDefault("identity:get_user", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and token.domain.id:%(target.user.domain_id)s) or user_id:%(target.user.id)s", "Show a user.", ["GET /v3/users/{user_id}", "HEAD /v3/users/{user_id}"]),
        PolicyDefault("identity:list_users", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)", "List users.", ["GET /v3/users", "HEAD /v3/users"]),
        PolicyDefault("identity:list_projects_for_user", "", "List the projects the caller may scope to.", ["GET /v3/auth/projects"]),
        PolicyDefault("identity:list_domains_for_user", "", "List the domains the caller may scope to.", ["GET /v3/auth/domains"]),
        PolicyDefault("identity:create_user", "(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)", "Create a user.", ["POST /v3/users"]),
        PolicyDefault("identity:update_user", "(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)", "Update a user, including an administrative password reset.", ["PATCH /v3/users/{user_id}"]),
        PolicyDefault("identity:delete_user", "(rule:admin_required) or (role:manager and token.domain.id:%(target.user.domain_id)s)", "Delete a user.", ["DELETE /v3/users/{user_id}"]),

        // MARK: Groups
        PolicyDefault("identity:get_group", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)", "Show a group.", ["GET /v3/groups/{group_id}", "HEAD /v3/groups/{group_id}"]),
        PolicyDefault("identity:list_groups", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)", "List groups.", ["GET /v3/groups", "HEAD /v3/groups"]),
        PolicyDefault("identity:list_groups_for_user", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(user_id)s", "List the groups a user is a member of.", ["GET /v3/users/{user_id}/groups", "HEAD /v3/users/{user_id}/groups"]),
        PolicyDefault("identity:create_group", "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)", "Create a group.", ["POST /v3/groups"]),
        PolicyDefault("identity:update_group", "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)", "Update a group.", ["PATCH /v3/groups/{group_id}"]),
        PolicyDefault("identity:delete_group", "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s)", "Delete a group.", ["DELETE /v3/groups/{group_id}"]),
        PolicyDefault("identity:list_users_in_group", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s)", "List the members of a group.", ["GET /v3/groups/{group_id}/users", "HEAD /v3/groups/{group_id}/users"]),
        PolicyDefault("identity:remove_user_from_group", "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)", "Remove a user from a group.", ["DELETE /v3/groups/{group_id}/users/{user_id}"]),
        PolicyDefault("identity:check_user_in_group", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)", "Check whether a user is a member of a group.", ["HEAD /v3/groups/{group_id}/users/{user_id}", "GET /v3/groups/{group_id}/users/{user_id}"]),
        PolicyDefault("identity:add_user_to_group", "(rule:admin_required) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)", "Add a user to a group.", ["PUT /v3/groups/{group_id}/users/{user_id}"]),

        // MARK: Roles (global and domain-specific)
        PolicyDefault("identity:get_role", "(rule:admin_required or (role:reader and system_scope:all)) or (role:manager and rule:domain_managed_target_role)", "Show a global role.", ["GET /v3/roles/{role_id}", "HEAD /v3/roles/{role_id}"]),
        PolicyDefault("identity:list_roles", "(rule:admin_required or (role:reader and system_scope:all)) or (role:manager and not domain_id:None)", "List global roles.", ["GET /v3/roles", "HEAD /v3/roles"]),
        PolicyDefault("identity:create_role", "rule:admin_required", "Create a global role.", ["POST /v3/roles"]),
        PolicyDefault("identity:update_role", "rule:admin_required", "Update a global role.", ["PATCH /v3/roles/{role_id}"]),
        PolicyDefault("identity:delete_role", "rule:admin_required", "Delete a global role.", ["DELETE /v3/roles/{role_id}"]),
        PolicyDefault("identity:get_domain_role", "rule:admin_required or (role:reader and system_scope:all)", "Show a domain-specific role.", ["GET /v3/roles/{role_id}", "HEAD /v3/roles/{role_id}"]),
        PolicyDefault("identity:list_domain_roles", "rule:admin_required or (role:reader and system_scope:all)", "List the roles of a domain.", ["GET /v3/roles?domain_id={domain_id}", "HEAD /v3/roles?domain_id={domain_id}"]),
        PolicyDefault("identity:create_domain_role", "rule:admin_required", "Create a domain-specific role.", ["POST /v3/roles"]),
        PolicyDefault("identity:update_domain_role", "rule:admin_required", "Update a domain-specific role.", ["PATCH /v3/roles/{role_id}"]),
        PolicyDefault("identity:delete_domain_role", "rule:admin_required", "Delete a domain-specific role.", ["DELETE /v3/roles/{role_id}"]),

        // MARK: Implied roles
        PolicyDefault("identity:get_implied_role", "rule:admin_required or (role:reader and system_scope:all)", "Show one role inference rule.", ["GET /v3/roles/{prior_role_id}/implies/{implied_role_id}"]),
        PolicyDefault("identity:list_implied_roles", "rule:admin_required or (role:reader and system_scope:all)", "List the roles a role implies.", ["GET /v3/roles/{prior_role_id}/implies", "HEAD /v3/roles/{prior_role_id}/implies"]),
        PolicyDefault("identity:create_implied_role", "rule:admin_required", "Make one role imply another.", ["PUT /v3/roles/{prior_role_id}/implies/{implied_role_id}"]),
        PolicyDefault("identity:delete_implied_role", "rule:admin_required", "Remove a role inference rule.", ["DELETE /v3/roles/{prior_role_id}/implies/{implied_role_id}"]),
        PolicyDefault("identity:list_role_inference_rules", "rule:admin_required or (role:reader and system_scope:all)", "List every role inference rule.", ["GET /v3/role_inferences", "HEAD /v3/role_inferences"]),
        PolicyDefault("identity:check_implied_role", "rule:admin_required or (role:reader and system_scope:all)", "Check whether one role implies another.", ["HEAD /v3/roles/{prior_role_id}/implies/{implied_role_id}"]),

        // MARK: Grants (project, domain and system role assignments)
        PolicyDefault("identity:check_grant", "(rule:admin_required) or ((role:reader and system_scope:all) or ((role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s))", "Check a role assignment on a project or domain.", ["HEAD /v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "GET /v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "HEAD /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", "GET /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", "HEAD /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "GET /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "HEAD /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}", "GET /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}", "HEAD /v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "GET /v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "HEAD /v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "GET /v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "HEAD /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "GET /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "HEAD /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "GET /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects"]),
        PolicyDefault("identity:list_grants", "(rule:admin_required) or ((role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s))", "List the roles assigned to a user or group on a project or domain.", ["GET /v3/projects/{project_id}/users/{user_id}/roles", "HEAD /v3/projects/{project_id}/users/{user_id}/roles", "GET /v3/projects/{project_id}/groups/{group_id}/roles", "HEAD /v3/projects/{project_id}/groups/{group_id}/roles", "GET /v3/domains/{domain_id}/users/{user_id}/roles", "HEAD /v3/domains/{domain_id}/users/{user_id}/roles", "GET /v3/domains/{domain_id}/groups/{group_id}/roles", "HEAD /v3/domains/{domain_id}/groups/{group_id}/roles", "GET /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/inherited_to_projects", "GET /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/inherited_to_projects"]),
        PolicyDefault("identity:create_grant", "(rule:admin_required) or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s) or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role", "Assign a role to a user or group on a project or domain.", ["PUT /v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "PUT /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", "PUT /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "PUT /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}", "PUT /v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "PUT /v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "PUT /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "PUT /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects"]),
        PolicyDefault("identity:revoke_grant", "(rule:admin_required) or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s) or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s) or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role", "Remove a role from a user or group on a project or domain.", ["DELETE /v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "DELETE /v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", "DELETE /v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "DELETE /v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}", "DELETE /v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "DELETE /v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects", "DELETE /v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects", "DELETE /v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects"]),
        PolicyDefault("identity:list_system_grants_for_user", "rule:admin_required or (role:reader and system_scope:all)", "List the system roles of a user.", ["HEAD /v3/system/users/{user_id}/roles", "GET /v3/system/users/{user_id}/roles"]),
        PolicyDefault("identity:check_system_grant_for_user", "rule:admin_required or (role:reader and system_scope:all)", "Check a system role of a user.", ["HEAD /v3/system/users/{user_id}/roles/{role_id}", "GET /v3/system/users/{user_id}/roles/{role_id}"]),
        PolicyDefault("identity:create_system_grant_for_user", "rule:admin_required", "Give a user a system role.", ["PUT /v3/system/users/{user_id}/roles/{role_id}"]),
        PolicyDefault("identity:revoke_system_grant_for_user", "rule:admin_required", "Take a system role from a user.", ["DELETE /v3/system/users/{user_id}/roles/{role_id}"]),
        PolicyDefault("identity:list_system_grants_for_group", "rule:admin_required or (role:reader and system_scope:all)", "List the system roles of a group.", ["HEAD /v3/system/groups/{group_id}/roles", "GET /v3/system/groups/{group_id}/roles"]),
        PolicyDefault("identity:check_system_grant_for_group", "rule:admin_required or (role:reader and system_scope:all)", "Check a system role of a group.", ["HEAD /v3/system/groups/{group_id}/roles/{role_id}", "GET /v3/system/groups/{group_id}/roles/{role_id}"]),
        PolicyDefault("identity:create_system_grant_for_group", "rule:admin_required", "Give a group a system role.", ["PUT /v3/system/groups/{group_id}/roles/{role_id}"]),
        PolicyDefault("identity:revoke_system_grant_for_group", "rule:admin_required", "Take a system role from a group.", ["DELETE /v3/system/groups/{group_id}/roles/{role_id}"]),

        // MARK: Role assignment listing
        PolicyDefault("identity:list_role_assignments", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)", "List role assignments.", ["GET /v3/role_assignments", "HEAD /v3/role_assignments"]),
        PolicyDefault("identity:list_role_assignments_for_tree", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)", "List role assignments across a project subtree.", ["GET /v3/role_assignments?include_subtree", "HEAD /v3/role_assignments?include_subtree"]),

        // MARK: Regions
        PolicyDefault("identity:get_region", "", "Show a region.", ["GET /v3/regions/{region_id}", "HEAD /v3/regions/{region_id}"]),
        PolicyDefault("identity:list_regions", "", "List regions.", ["GET /v3/regions", "HEAD /v3/regions"]),
        PolicyDefault("identity:create_region", "rule:admin_required", "Create a region.", ["POST /v3/regions", "PUT /v3/regions/{region_id}"]),
        PolicyDefault("identity:update_region", "rule:admin_required", "Update a region.", ["PATCH /v3/regions/{region_id}"]),
        PolicyDefault("identity:delete_region", "rule:admin_required", "Delete a region.", ["DELETE /v3/regions/{region_id}"]),

        // MARK: Services
        PolicyDefault("identity:get_service", "rule:admin_required or (role:reader and system_scope:all)", "Show a catalog service.", ["GET /v3/services/{service_id}"]),
        PolicyDefault("identity:list_services", "rule:admin_required or (role:reader and system_scope:all)", "List catalog services.", ["GET /v3/services"]),
        PolicyDefault("identity:create_service", "rule:admin_required", "Create a catalog service.", ["POST /v3/services"]),
        PolicyDefault("identity:update_service", "rule:admin_required", "Update a catalog service.", ["PATCH /v3/services/{service_id}"]),
        PolicyDefault("identity:delete_service", "rule:admin_required", "Delete a catalog service.", ["DELETE /v3/services/{service_id}"]),

        // MARK: Endpoints
        PolicyDefault("identity:get_endpoint", "rule:admin_required or (role:reader and system_scope:all)", "Show an endpoint.", ["GET /v3/endpoints/{endpoint_id}"]),
        PolicyDefault("identity:list_endpoints", "rule:admin_required or (role:reader and system_scope:all)", "List endpoints.", ["GET /v3/endpoints"]),
        PolicyDefault("identity:create_endpoint", "rule:admin_required", "Create an endpoint.", ["POST /v3/endpoints"]),
        PolicyDefault("identity:update_endpoint", "rule:admin_required", "Update an endpoint.", ["PATCH /v3/endpoints/{endpoint_id}"]),
        PolicyDefault("identity:delete_endpoint", "rule:admin_required", "Delete an endpoint.", ["DELETE /v3/endpoints/{endpoint_id}"]),

        // MARK: Application credentials
        PolicyDefault("identity:get_application_credential", "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner", "Show an application credential.", ["GET /v3/users/{user_id}/application_credentials/{application_credential_id}", "HEAD /v3/users/{user_id}/application_credentials/{application_credential_id}"]),
        PolicyDefault("identity:list_application_credentials", "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner", "List the application credentials of a user.", ["GET /v3/users/{user_id}/application_credentials", "HEAD /v3/users/{user_id}/application_credentials"]),
        PolicyDefault("identity:create_application_credential", "user_id:%(user_id)s", "Create an application credential for oneself.", ["POST /v3/users/{user_id}/application_credentials"]),
        PolicyDefault("identity:delete_application_credential", "rule:admin_or_owner", "Delete an application credential.", ["DELETE /v3/users/{user_id}/application_credentials/{application_credential_id}"]),
    ]
}
