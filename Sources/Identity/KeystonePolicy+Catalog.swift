// Keystone's secure-RBAC defaults for stored policies, their endpoint associations,
// domain-specific configuration and project endpoint filters (keystone/common/policies/
// policy.py, policy_association.py, domain_config.py, project_endpoint.py,
// endpoint_group.py), with base.py's constants expanded.

import PetrelCore

extension KeystonePolicy {
    static let catalogExtensionDefaults: [PolicyDefault] = [
        // MARK: Policies (stored blobs)
        PolicyDefault("identity:get_policy", "rule:admin_required or (role:reader and system_scope:all)", "Show a stored policy.", ["GET /v3/policies/{policy_id}"]),
        PolicyDefault("identity:list_policies", "rule:admin_required or (role:reader and system_scope:all)", "List stored policies.", ["GET /v3/policies"]),
        PolicyDefault("identity:create_policy", "rule:admin_required", "Store a policy.", ["POST /v3/policies"]),
        PolicyDefault("identity:update_policy", "rule:admin_required", "Update a stored policy.", ["PATCH /v3/policies/{policy_id}"]),
        PolicyDefault("identity:delete_policy", "rule:admin_required", "Delete a stored policy.", ["DELETE /v3/policies/{policy_id}"]),

        // MARK: Policy associations (OS-ENDPOINT-POLICY)
        PolicyDefault("identity:create_policy_association_for_endpoint", "rule:admin_required", "Associate a policy with an endpoint.", ["PUT /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}"]),
        PolicyDefault("identity:check_policy_association_for_endpoint", "rule:admin_required or (role:reader and system_scope:all)", "Check that a policy is associated with an endpoint.", ["GET /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}", "HEAD /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}"]),
        PolicyDefault("identity:delete_policy_association_for_endpoint", "rule:admin_required", "Remove a policy's association with an endpoint.", ["DELETE /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}"]),
        PolicyDefault("identity:create_policy_association_for_service", "rule:admin_required", "Associate a policy with a service.", ["PUT /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}"]),
        PolicyDefault("identity:check_policy_association_for_service", "rule:admin_required or (role:reader and system_scope:all)", "Check that a policy is associated with a service.", ["GET /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}", "HEAD /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}"]),
        PolicyDefault("identity:delete_policy_association_for_service", "rule:admin_required", "Remove a policy's association with a service.", ["DELETE /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}"]),
        PolicyDefault("identity:create_policy_association_for_region_and_service", "rule:admin_required", "Associate a policy with a service in a region.", ["PUT /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}"]),
        PolicyDefault("identity:check_policy_association_for_region_and_service", "rule:admin_required or (role:reader and system_scope:all)", "Check that a policy is associated with a service in a region.", ["GET /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}", "HEAD /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}"]),
        PolicyDefault("identity:delete_policy_association_for_region_and_service", "rule:admin_required", "Remove a policy's association with a service in a region.", ["DELETE /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}"]),
        PolicyDefault("identity:get_policy_for_endpoint", "rule:admin_required or (role:reader and system_scope:all)", "Show the policy that applies to an endpoint.", ["GET /v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy", "HEAD /v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy"]),
        PolicyDefault("identity:list_endpoints_for_policy", "rule:admin_required or (role:reader and system_scope:all)", "List the endpoints a policy applies to.", ["GET /v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints"]),

        // MARK: Domain-specific configuration
        PolicyDefault("identity:create_domain_config", "rule:admin_required", "Create (or replace) a domain's configuration.", ["PUT /v3/domains/{domain_id}/config"]),
        PolicyDefault("identity:get_domain_config", "rule:admin_required or (role:reader and system_scope:all)", "Show a domain's configuration, one group of it, or one option.", ["GET /v3/domains/{domain_id}/config", "HEAD /v3/domains/{domain_id}/config", "GET /v3/domains/{domain_id}/config/{group}", "HEAD /v3/domains/{domain_id}/config/{group}", "GET /v3/domains/{domain_id}/config/{group}/{option}", "HEAD /v3/domains/{domain_id}/config/{group}/{option}"]),
        PolicyDefault("identity:update_domain_config", "rule:admin_required", "Update a domain's configuration, one group of it, or one option.", ["PATCH /v3/domains/{domain_id}/config", "PATCH /v3/domains/{domain_id}/config/{group}", "PATCH /v3/domains/{domain_id}/config/{group}/{option}"]),
        PolicyDefault("identity:delete_domain_config", "rule:admin_required", "Delete a domain's configuration, one group of it, or one option.", ["DELETE /v3/domains/{domain_id}/config", "DELETE /v3/domains/{domain_id}/config/{group}", "DELETE /v3/domains/{domain_id}/config/{group}/{option}"]),
        PolicyDefault("identity:get_domain_config_default", "rule:admin_required or (role:reader and system_scope:all)", "Show the default domain configuration, one group of it, or one option.", ["GET /v3/domains/config/default", "HEAD /v3/domains/config/default", "GET /v3/domains/config/{group}/default", "HEAD /v3/domains/config/{group}/default", "GET /v3/domains/config/{group}/{option}/default", "HEAD /v3/domains/config/{group}/{option}/default"]),

        // MARK: Project endpoints (OS-EP-FILTER)
        PolicyDefault("identity:list_projects_for_endpoint", "rule:admin_required or (role:reader and system_scope:all)", "List the projects given an endpoint.", ["GET /v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects"]),
        PolicyDefault("identity:add_endpoint_to_project", "rule:admin_required", "Give a project an endpoint (its catalog then shows only the endpoints it was given).", ["PUT /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}"]),
        PolicyDefault("identity:check_endpoint_in_project", "rule:admin_required or (role:reader and system_scope:all)", "Check that a project was given an endpoint.", ["GET /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}", "HEAD /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}"]),
        PolicyDefault("identity:list_endpoints_for_project", "rule:admin_required or (role:reader and system_scope:all)", "List the endpoints a project was given, itself or through endpoint groups.", ["GET /v3/OS-EP-FILTER/projects/{project_id}/endpoints"]),
        PolicyDefault("identity:remove_endpoint_from_project", "rule:admin_required", "Take an endpoint from a project.", ["DELETE /v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}"]),

        // MARK: Endpoint groups (OS-EP-FILTER)
        PolicyDefault("identity:create_endpoint_group", "rule:admin_required", "Create an endpoint group.", ["POST /v3/OS-EP-FILTER/endpoint_groups"]),
        PolicyDefault("identity:list_endpoint_groups", "rule:admin_required or (role:reader and system_scope:all)", "List endpoint groups.", ["GET /v3/OS-EP-FILTER/endpoint_groups"]),
        PolicyDefault("identity:get_endpoint_group", "rule:admin_required or (role:reader and system_scope:all)", "Show an endpoint group.", ["GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}", "HEAD /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}"]),
        PolicyDefault("identity:update_endpoint_group", "rule:admin_required", "Update an endpoint group.", ["PATCH /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}"]),
        PolicyDefault("identity:delete_endpoint_group", "rule:admin_required", "Delete an endpoint group.", ["DELETE /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}"]),
        PolicyDefault("identity:list_projects_associated_with_endpoint_group", "rule:admin_required or (role:reader and system_scope:all)", "List the projects given an endpoint group.", ["GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects"]),
        PolicyDefault("identity:list_endpoints_associated_with_endpoint_group", "rule:admin_required or (role:reader and system_scope:all)", "List the endpoints an endpoint group selects.", ["GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints"]),
        PolicyDefault("identity:get_endpoint_group_in_project", "rule:admin_required or (role:reader and system_scope:all)", "Check that a project was given an endpoint group.", ["GET /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}", "HEAD /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}"]),
        PolicyDefault("identity:list_endpoint_groups_for_project", "rule:admin_required or (role:reader and system_scope:all)", "List the endpoint groups a project was given.", ["GET /v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups"]),
        PolicyDefault("identity:add_endpoint_group_to_project", "rule:admin_required", "Give a project an endpoint group's endpoints.", ["PUT /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}"]),
        PolicyDefault("identity:remove_endpoint_group_from_project", "rule:admin_required", "Take an endpoint group from a project.", ["DELETE /v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}"]),
    ]
}
