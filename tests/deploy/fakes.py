"""Stand-ins for the AWS APIs moto does not implement (Amplify, AgentCore Identity, Bedrock's
GetInferenceProfile, Cognito's managed login branding), built on botocore's Stubber.

The boto3 client still validates every request against the real API model, and every answer
(errors included: the code must be one the operation models) is validated against the
operation's real output shape before the code under test sees it. Unlike a queue of canned
answers, each fake keeps state, so `up`, a second `up` and `down` run against it as they would
against AWS.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from botocore import xform_name
from botocore.stub import Stubber

Handler = Callable[[dict[str, Any]], dict[str, Any]]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class FakeApi(Stubber):
    """Answers the operations in `handlers`; any other operation fails the test, or with
    `passthrough` goes on to the client's real endpoint (moto)."""

    def __init__(self, client: Any, handlers: Mapping[str, Handler], passthrough: bool = False):
        super().__init__(client)
        self.handlers = handlers
        self.passthrough = passthrough
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.activate()

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> None:
        if self._should_not_stub(context):
            return
        handler = self.handlers.get(model.name)
        if handler is None:
            if self.passthrough:
                return
            raise AssertionError(f"{model.name} is not faked: the deploy should not call it")
        self.calls.append((model.name, copy.deepcopy(params)))
        method = xform_name(model.name)
        try:
            answer = handler(params)
        except ApiError as error:
            modeled = {shape.name for shape in model.error_shapes}
            assert error.code in modeled, f"{model.name} cannot answer {error.code}"
            self.add_client_error(method, error.code, error.message, error.status)
        else:
            self.add_response(method, answer)

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        if self.passthrough and model.name not in self.handlers:
            return None
        return super()._get_response_handler(model, params, context, **kwargs)


class Amplify:
    """Apps, branches, manual deployments (the zip goes to `upload_url`) and tags."""

    def __init__(self, region: str, account: str, upload_url: str) -> None:
        self.region, self.account, self.upload_url = region, account, upload_url
        self.apps: dict[str, dict[str, Any]] = {}
        self.branches: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[tuple[str, str, str], dict[str, Any]] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "ListApps": lambda p: {"apps": list(self.apps.values())},
            "CreateApp": self.create_app,
            "UpdateApp": self.update_app,
            "DeleteApp": self.delete_app,
            "CreateBranch": self.create_branch,
            "GetBranch": lambda p: {"branch": self._branch(p)},
            "CreateDeployment": self.create_deployment,
            "StartDeployment": self.start_deployment,
            "GetJob": self.get_job,
            "TagResource": self.tag_resource,
        }

    def create_app(self, p: dict[str, Any]) -> dict[str, Any]:
        app_id = "d" + uuid.uuid4().hex[:13]
        self.apps[app_id] = {
            "appId": app_id,
            "appArn": f"arn:aws:amplify:{self.region}:{self.account}:apps/{app_id}",
            "name": p["name"],
            "tags": dict(p.get("tags", {})),
            "description": p.get("description", ""),
            "repository": "",
            "platform": p.get("platform", "WEB"),
            "createTime": NOW,
            "updateTime": NOW,
            "environmentVariables": {},
            "defaultDomain": f"{app_id}.amplifyapp.com",
            "enableBranchAutoBuild": p.get("enableBranchAutoBuild", False),
            "enableBasicAuth": False,
            "customRules": p.get("customRules", []),
        }
        return {"app": self.apps[app_id]}

    def update_app(self, p: dict[str, Any]) -> dict[str, Any]:
        app = self._app(p["appId"])
        app.update({k: v for k, v in p.items() if k != "appId"})
        return {"app": app}

    def delete_app(self, p: dict[str, Any]) -> dict[str, Any]:
        app = self._app(p["appId"])
        del self.apps[p["appId"]]
        for key in [k for k in self.branches if k[0] == p["appId"]]:
            del self.branches[key]
        return {"app": app}

    def create_branch(self, p: dict[str, Any]) -> dict[str, Any]:
        app = self._app(p["appId"])
        name = p["branchName"]
        self.branches[(p["appId"], name)] = {
            "branchArn": f"{app['appArn']}/branches/{name}",
            "branchName": name,
            "description": "",
            "tags": dict(p.get("tags", {})),
            "stage": p.get("stage", "NONE"),
            "displayName": name,
            "enableNotification": False,
            "createTime": NOW,
            "updateTime": NOW,
            "environmentVariables": {},
            "enableAutoBuild": p.get("enableAutoBuild", True),
            "customDomains": [],
            "framework": "",
            "activeJobId": "",
            "totalNumberOfJobs": "0",
            "enableBasicAuth": False,
            "ttl": "5",
            "enablePullRequestPreview": False,
        }
        return {"branch": self.branches[(p["appId"], name)]}

    def create_deployment(self, p: dict[str, Any]) -> dict[str, Any]:
        branch = self._branch(p)
        job_id = str(int(branch["totalNumberOfJobs"]) + 1)
        branch["totalNumberOfJobs"] = job_id
        self.jobs[(p["appId"], p["branchName"], job_id)] = {"status": "CREATED"}
        return {
            "jobId": job_id,
            "fileUploadUrls": {},
            "zipUploadUrl": f"{self.upload_url}/{p['appId']}/{job_id}.zip",
        }

    def start_deployment(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs[(p["appId"], p["branchName"], p["jobId"])]
        job["status"] = "PENDING"
        return {"jobSummary": self._summary(p, job)}

    def get_job(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs[(p["appId"], p["branchName"], p["jobId"])]
        job["status"] = {"PENDING": "RUNNING", "RUNNING": "SUCCEED"}.get(
            job["status"], job["status"]
        )
        return {"job": {"summary": self._summary(p, job), "steps": []}}

    def tag_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        for item in [*self.apps.values(), *self.branches.values()]:
            if p["resourceArn"] in (item.get("appArn"), item.get("branchArn")):
                item["tags"].update(p["tags"])
                return {}
        raise ApiError("ResourceNotFoundException", p["resourceArn"], 404)

    def _app(self, app_id: str) -> dict[str, Any]:
        if app_id not in self.apps:
            raise ApiError("NotFoundException", f"app {app_id}", 404)
        return self.apps[app_id]

    def _branch(self, p: dict[str, Any]) -> dict[str, Any]:
        self._app(p["appId"])
        if (p["appId"], p["branchName"]) not in self.branches:
            raise ApiError("NotFoundException", f"branch {p['branchName']}", 404)
        return self.branches[(p["appId"], p["branchName"])]

    def _summary(self, p: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        branch = self._branch(p)
        return {
            "jobArn": f"{branch['branchArn']}/jobs/{p['jobId']}",
            "jobId": p["jobId"],
            "commitId": "HEAD",
            "commitMessage": "Manual deployment",
            "commitTime": NOW,
            "startTime": NOW,
            "status": job["status"],
            "jobType": "MANUAL",
        }


class Identity:
    """Workload identities (one exists for every runtime until deleted) and OAuth2 credential
    providers, as the AgentCore control plane answers them."""

    def __init__(self, region: str, account: str) -> None:
        self.region, self.account = region, account
        self.identities: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.providers: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, str] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "GetWorkloadIdentity": lambda p: self._identity(p["name"]),
            "UpdateWorkloadIdentity": self.update_identity,
            "DeleteWorkloadIdentity": self.delete_identity,
            "CreateOauth2CredentialProvider": self.create_provider,
            "GetOauth2CredentialProvider": lambda p: self._provider(p["name"]),
            "UpdateOauth2CredentialProvider": self.update_provider,
            "DeleteOauth2CredentialProvider": self.delete_provider,
            "ListTagsForResource": self.list_tags,
        }

    def update_identity(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self._identity(p["name"])
        found["allowedResourceOauth2ReturnUrls"] = list(
            p.get("allowedResourceOauth2ReturnUrls", [])
        )
        return found

    def delete_identity(self, p: dict[str, Any]) -> dict[str, Any]:
        self._identity(p["name"])
        self.deleted.add(p["name"])
        self.identities.pop(p["name"], None)
        return {}

    def create_provider(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["name"]
        if name in self.providers:
            raise ApiError("ValidationException", f"{name} exists")
        config = p["oauth2ProviderConfigInput"]["githubOauth2ProviderConfig"]
        self.secrets[name] = config["clientSecret"]
        self.providers[name] = {
            "clientSecretArn": {
                "secretArn": f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:"
                f"bedrock-agentcore-identity!default/oauth2/{name}-AbC123"
            },
            "name": name,
            "credentialProviderArn": f"arn:aws:bedrock-agentcore:{self.region}:{self.account}:"
            f"token-vault/default/oauth2credentialprovider/{name}",
            "credentialProviderVendor": p["credentialProviderVendor"],
            "callbackUrl": f"https://bedrock-agentcore.{self.region}.amazonaws.com/identities/"
            f"oauth2/callback/{uuid.uuid4()}",
            "oauth2ProviderConfigOutput": {
                "githubOauth2ProviderConfig": {
                    "oauthDiscovery": {
                        "authorizationServerMetadata": {
                            "issuer": "https://github.com",
                            "authorizationEndpoint": "https://github.com/login/oauth/authorize",
                            "tokenEndpoint": "https://github.com/login/oauth/access_token",
                        }
                    },
                    "clientId": config["clientId"],
                }
            },
            "createdTime": NOW,
            "lastUpdatedTime": NOW,
            "status": "READY",
            "tags": dict(p.get("tags", {})),
        }
        return self._answer(name, "createdTime", "lastUpdatedTime", "credentialProviderVendor")

    def update_provider(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self._provider(p["name"])
        config = p["oauth2ProviderConfigInput"]["githubOauth2ProviderConfig"]
        self.secrets[p["name"]] = config["clientSecret"]
        github = self.providers[p["name"]]["oauth2ProviderConfigOutput"][
            "githubOauth2ProviderConfig"
        ]
        github["clientId"] = config["clientId"]
        return {k: v for k, v in found.items() if k != "failureReason"}

    def delete_provider(self, p: dict[str, Any]) -> dict[str, Any]:
        self._provider(p["name"])
        del self.providers[p["name"]]
        return {}

    def list_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        for provider in self.providers.values():
            if provider["credentialProviderArn"] == p["resourceArn"]:
                return {"tags": provider["tags"]}
        raise ApiError("ResourceNotFoundException", p["resourceArn"], 404)

    def _identity(self, name: str) -> dict[str, Any]:
        if name in self.deleted:
            raise ApiError("ResourceNotFoundException", f"workload identity {name}", 404)
        return self.identities.setdefault(
            name,
            {
                "name": name,
                "workloadIdentityArn": f"arn:aws:bedrock-agentcore:{self.region}:{self.account}:"
                f"workload-identity-directory/default/workload-identity/{name}",
                "allowedResourceOauth2ReturnUrls": [],
                "createdTime": NOW,
                "lastUpdatedTime": NOW,
            },
        )

    def _provider(self, name: str) -> dict[str, Any]:
        if name not in self.providers:
            raise ApiError("ResourceNotFoundException", f"credential provider {name}", 404)
        return self._answer(name)

    def _answer(self, name: str, *drop: str) -> dict[str, Any]:
        found = {k: v for k, v in self.providers[name].items() if k not in ("tags", *drop)}
        return copy.deepcopy(found)


class Bedrock:
    """GetInferenceProfile for cross-region profiles: the profile and its regions' models."""

    REGIONS = {"eu": ("eu-central-1", "eu-west-1", "eu-west-3"), "us": ("us-east-1", "us-west-2")}

    def __init__(self, region: str, account: str) -> None:
        self.region, self.account = region, account

    def handlers(self) -> dict[str, Handler]:
        return {"GetInferenceProfile": self.get_inference_profile}

    def get_inference_profile(self, p: dict[str, Any]) -> dict[str, Any]:
        profile = p["inferenceProfileIdentifier"]
        geography, model = profile.split(".", 1)
        return {
            "inferenceProfileName": profile,
            "inferenceProfileArn": f"arn:aws:bedrock:{self.region}:{self.account}:"
            f"inference-profile/{profile}",
            "models": [
                {"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model}"}
                for region in self.REGIONS[geography]
            ],
            "inferenceProfileId": profile,
            "status": "ACTIVE",
            "type": "SYSTEM_DEFINED",
        }


class Branding:
    """Cognito's managed login styles (moto has user pools, not styles)."""

    def __init__(self) -> None:
        self.styles: dict[tuple[str, str], dict[str, Any]] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "DescribeManagedLoginBrandingByClient": self.describe,
            "CreateManagedLoginBranding": self.create,
        }

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (p["UserPoolId"], p["ClientId"])
        if key not in self.styles:
            raise ApiError("ResourceNotFoundException", "no style for this client", 404)
        return {"ManagedLoginBranding": self.styles[key]}

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        self.styles[(p["UserPoolId"], p["ClientId"])] = {
            "ManagedLoginBrandingId": str(uuid.uuid4()),
            "UserPoolId": p["UserPoolId"],
            "UseCognitoProvidedValues": bool(p.get("UseCognitoProvidedValues")),
            "CreationDate": NOW,
            "LastModifiedDate": NOW,
        }
        return {"ManagedLoginBranding": self.styles[(p["UserPoolId"], p["ClientId"])]}
