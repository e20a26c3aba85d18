// Keystone's secure-RBAC defaults for credentials, EC2 credentials and OS-TRUST trusts
// (keystone/common/policies/credential.py, ec2_credential.py, trust.py), with base.py's
// constants expanded.

import PetrelCore

extension KeystonePolicy {
    static let delegationDefaults: [PolicyDefault] = [
        // MARK: Credentials
        PolicyDefault("identity:get_credential", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.credential.user_id)s", "Show a credential.", ["GET /v3/credentials/{credential_id}", "HEAD /v3/credentials/{credential_id}"]),
        PolicyDefault("identity:list_credentials", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.credential.user_id)s", "List credentials (each shown only if the caller may show it).", ["GET /v3/credentials", "HEAD /v3/credentials"]),
        PolicyDefault("identity:create_credential", "(rule:admin_required) or user_id:%(target.credential.user_id)s", "Create a credential.", ["POST /v3/credentials"]),
        PolicyDefault("identity:update_credential", "(rule:admin_required) or user_id:%(target.credential.user_id)s", "Update a credential.", ["PATCH /v3/credentials/{credential_id}"]),
        PolicyDefault("identity:delete_credential", "(rule:admin_required) or user_id:%(target.credential.user_id)s", "Delete a credential.", ["DELETE /v3/credentials/{credential_id}"]),

        // MARK: EC2 credentials
        PolicyDefault("identity:ec2_get_credential", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.credential.user_id)s", "Show an EC2 credential.", ["GET /v3/users/{user_id}/credentials/OS-EC2/{credential_id}"]),
        PolicyDefault("identity:ec2_list_credentials", "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner", "List a user's EC2 credentials.", ["GET /v3/users/{user_id}/credentials/OS-EC2"]),
        PolicyDefault("identity:ec2_create_credential", "(rule:admin_required) or (role:member and user_id:%(target.credential.user_id)s)", "Create an EC2 credential.", ["POST /v3/users/{user_id}/credentials/OS-EC2"]),
        PolicyDefault("identity:ec2_delete_credential", "(rule:admin_required) or (role:member and user_id:%(target.credential.user_id)s)", "Delete an EC2 credential.", ["DELETE /v3/users/{user_id}/credentials/OS-EC2/{credential_id}"]),
        PolicyDefault("identity:ec2tokens_validate", "", "Authenticate with a request signed by an EC2 credential.", ["POST /v3/ec2tokens"]),

        // MARK: Access rules of application credentials
        PolicyDefault("identity:get_access_rule", "(role:reader and system_scope:all) or user_id:%(target.user.id)s", "Show an access rule.", ["GET /v3/users/{user_id}/access_rules/{access_rule_id}", "HEAD /v3/users/{user_id}/access_rules/{access_rule_id}"]),
        PolicyDefault("identity:list_access_rules", "(role:reader and system_scope:all) or user_id:%(target.user.id)s", "List a user's access rules.", ["GET /v3/users/{user_id}/access_rules", "HEAD /v3/users/{user_id}/access_rules"]),
        PolicyDefault("identity:delete_access_rule", "(role:admin and system_scope:all) or user_id:%(target.user.id)s", "Delete an access rule no application credential uses.", ["DELETE /v3/users/{user_id}/access_rules/{access_rule_id}"]),

        // MARK: Trusts
        PolicyDefault("identity:create_trust", "user_id:%(trust.trustor_user_id)s", "Create a trust (as its trustor).", ["POST /v3/OS-TRUST/trusts"]),
        PolicyDefault("identity:list_trusts", "rule:admin_required or (role:reader and system_scope:all)", "List every trust.", ["GET /v3/OS-TRUST/trusts", "HEAD /v3/OS-TRUST/trusts"]),
        PolicyDefault("identity:list_trusts_for_trustor", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.trust.trustor_user_id)s", "List the trusts of a trustor.", ["GET /v3/OS-TRUST/trusts?trustor_user_id={trustor_user_id}"]),
        PolicyDefault("identity:list_trusts_for_trustee", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.trust.trustee_user_id)s", "List the trusts of a trustee.", ["GET /v3/OS-TRUST/trusts?trustee_user_id={trustee_user_id}"]),
        PolicyDefault("identity:list_roles_for_trust", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.trust.trustor_user_id)s or user_id:%(target.trust.trustee_user_id)s", "List the roles a trust delegates.", ["GET /v3/OS-TRUST/trusts/{trust_id}/roles", "HEAD /v3/OS-TRUST/trusts/{trust_id}/roles"]),
        PolicyDefault("identity:get_role_for_trust", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.trust.trustor_user_id)s or user_id:%(target.trust.trustee_user_id)s", "Check a role a trust delegates.", ["GET /v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", "HEAD /v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}"]),
        PolicyDefault("identity:delete_trust", "rule:admin_required or user_id:%(target.trust.trustor_user_id)s", "Delete a trust.", ["DELETE /v3/OS-TRUST/trusts/{trust_id}"]),
        PolicyDefault("identity:get_trust", "(rule:admin_required) or (role:reader and system_scope:all) or user_id:%(target.trust.trustor_user_id)s or user_id:%(target.trust.trustee_user_id)s", "Show a trust.", ["GET /v3/OS-TRUST/trusts/{trust_id}", "HEAD /v3/OS-TRUST/trusts/{trust_id}"]),
    ]
}
