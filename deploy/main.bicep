// One environment of pexip-sdk: a Linux Function App on the Flex Consumption plan running the
// custom handler, its storage (identity-based AzureWebJobsStorage: no account keys), a Key
// Vault (RBAC) holding the secrets, Application Insights, the role assignments the app's
// identity needs, and alerts on the pool and the poison queues.
//
// Deploy (README, "Deploying to Azure"):
//   az deployment group create -g <group> -f deploy/main.bicep -p deploy/main.bicepparam
// then publish target/functionapp.zip (scripts/package).
//
// tests/deploy.rs checks this file against the configuration contract: every setting `serve`
// needs is set, no secret value is inline, and every name is in the README's table.

targetScope = 'resourceGroup'

@description('Short name of the environment; resource names derive from it (3-11 lowercase letters and digits).')
@minLength(3)
@maxLength(11)
param name string

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Management Node URL, https://host[:port][/prefix].')
param pexipBaseUrl string

@description('Pexip OAuth2 client id (Pexip: Users & Devices > OAuth2 clients).')
param pexipClientId string

@description('The OAuth2 client\'s EC P-256 private key (PEM, or base64 of PEM). Stored in Key Vault only.')
@secure()
param pexipPrivateKey string

@description('HTTP Basic user configured on Pexip\'s event sink.')
param eventSinkUsername string = 'pexip'

@description('Its password. Stored in Key Vault only.')
@secure()
param eventSinkPassword string

@description('Password of a Pexip admin account, for HTTP Basic instead of OAuth2; empty: none. Stored in Key Vault only.')
@secure()
param pexipPassword string = ''

@description('Rooms the timers keep in the pool; the pool alert fires below it.')
param roomPoolTarget int = 10

@description('CIDR networks of the Conferencing Nodes allowed to call the event sink; empty: any.')
param eventSinkAllowedNetworks string = ''

@description('Genesys Cloud division ids whose agents may read rooms.')
param genesysAllowedDivisions string = ''

@description('Genesys Cloud API of the region.')
param genesysApiBase string = 'https://api.cac1.pure.cloud'

@description('Entra ID tenant id for the in-app token check of /room*; empty: off on purpose (AUTH_DISABLED: function keys and API Management only).')
param authTenantId string = ''

@description('Accepted token audience (api://<app client id> and/or the client id), with authTenantId.')
param authAudience string = ''

@description('App roles allowed into /room*, comma list, with authTenantId.')
param authAllowedRoles string = ''

@description('Where alerts are e-mailed; empty: alerts without notification.')
param alertEmail string = ''

@description('Most instances the plan scales out to.')
param maximumInstanceCount int = 40

var suffix = uniqueString(resourceGroup().id, name)
var storageName = take('st${name}${suffix}', 24)
var vaultName = take('kv-${name}-${suffix}', 24)
var appName = 'func-${name}-${suffix}'
var deploymentContainer = 'app-package'

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    // Identity only: the app, the host and the deployment all use the managed identity.
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${name}-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    // The Rust exporter authenticates with the connection string's instrumentation key.
    DisableLocalAuth: false
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
  }
}

// The secret names are the service's defaults (KV_SECRET_* settings).
resource pexipKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'pexip-jwt-key'
  properties: { value: pexipPrivateKey }
}

resource eventSinkSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'event-sink-password'
  properties: { value: eventSinkPassword }
}

resource pexipPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(pexipPassword)) {
  parent: vault
  name: 'pexip-password'
  properties: { value: pexipPassword }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'asp-${name}-${suffix}'
  location: location
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

// Every setting `serve` reads in Azure. Secrets are not here: KEY_VAULT_URL makes `serve` read
// them from the vault with the app's identity.
var appSettings = concat([
  { name: 'AzureWebJobsStorage__accountName', value: storage.name }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
  { name: 'KEY_VAULT_URL', value: vault.properties.vaultUri }
  { name: 'PEXIP_BASE_URL', value: pexipBaseUrl }
  { name: 'PEXIP_CLIENT_ID', value: pexipClientId }
  { name: 'EVENT_SINK_USERNAME', value: eventSinkUsername }
  { name: 'EVENT_SINK_ALLOWED_NETWORKS', value: eventSinkAllowedNetworks }
  { name: 'ROOM_POOL_TARGET', value: string(roomPoolTarget) }
  { name: 'GENESYS_API_BASE', value: genesysApiBase }
  { name: 'GENESYS_ALLOWED_DIVISIONS', value: genesysAllowedDivisions }
  { name: 'LOG_FORMAT', value: 'json' }
], empty(authTenantId) ? [
  // Without a tenant, the host's function keys and API Management are the only gate on
  // /room*: `serve` starts so only when told it is on purpose.
  { name: 'AUTH_DISABLED', value: 'true' }
] : [
  { name: 'AUTH_JWKS_URL', value: '${environment().authentication.loginEndpoint}${authTenantId}/discovery/v2.0/keys' }
  { name: 'AUTH_ISSUER', value: '${environment().authentication.loginEndpoint}${authTenantId}/v2.0' }
  { name: 'AUTH_AUDIENCE', value: authAudience }
  { name: 'AUTH_ALLOWED_ROLES', value: authAllowedRoles }
])

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      // The custom handler stack: host.json's customHandler starts `pexip-sdk serve`.
      runtime: { name: 'custom', version: '1.0' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: appSettings
    }
  }
}

// The app's identity: queues (pool, deletions, poison), blobs (the host's timer leases, the
// deployment package, the per-call locks) and the vault's secrets.
resource queueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageQueueDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource blobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, app.id, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource alertGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-${name}'
  location: 'global'
  properties: {
    groupShortName: take('pexip${name}', 12)
    enabled: true
    emailReceivers: [
      { name: 'operators', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
  }
}

// Alerts on the custom metrics metrics_timer sends every 5 minutes (src/telemetry/metrics.rs).
var alerts = [
  {
    name: 'pool-below-target'
    description: 'The room pool stayed below ROOM_POOL_TARGET for 15 minutes: callers get slow synchronous creates, or none.'
    severity: 2
    query: 'customMetrics | where name == "pool_depth" | summarize depth = max(value) | where depth < ${roomPoolTarget}'
  }
  {
    name: 'poison-messages'
    description: 'Messages reached a poison queue: a room could not be deleted or a pool message is unreadable.'
    severity: 2
    query: 'customMetrics | where name == "poison_count" | summarize poison = max(value) | where poison > 0'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for alert in alerts: {
  name: '${alert.name}-${name}'
  location: location
  properties: {
    displayName: '${alert.name} (${name})'
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [ insights.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: empty(alertEmail) ? [] : [ alertGroup.id ] }
  }
}]

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}'
output keyVaultName string = vault.name
output storageAccountName string = storage.name
output applicationInsightsName string = insights.name
