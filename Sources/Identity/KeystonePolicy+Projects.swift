// Keystone's secure-RBAC defaults for project tags (keystone/common/policies/project.py).

import PetrelCore

extension KeystonePolicy {
    static let projectTagDefaults: [PolicyDefault] = [
        PolicyDefault("identity:list_project_tags", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s", "List the tags of a project.", ["GET /v3/projects/{project_id}/tags", "HEAD /v3/projects/{project_id}/tags"]),
        PolicyDefault("identity:get_project_tag", "(rule:admin_required) or (role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s) or project_id:%(target.project.id)s", "Check a tag of a project.", ["GET /v3/projects/{project_id}/tags/{tag}", "HEAD /v3/projects/{project_id}/tags/{tag}"]),
        PolicyDefault("identity:update_project_tags", "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)", "Replace the tags of a project.", ["PUT /v3/projects/{project_id}/tags"]),
        PolicyDefault("identity:create_project_tag", "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)", "Add a tag to a project.", ["PUT /v3/projects/{project_id}/tags/{tag}"]),
        PolicyDefault("identity:delete_project_tags", "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)", "Remove every tag of a project.", ["DELETE /v3/projects/{project_id}/tags"]),
        PolicyDefault("identity:delete_project_tag", "(rule:admin_required) or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)", "Remove a tag from a project.", ["DELETE /v3/projects/{project_id}/tags/{tag}"]),
    ]
}
