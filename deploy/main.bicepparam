// Parameters of one environment. Secrets are read from the deploying shell's environment,
// never written here:
//   export PEXIP_PRIVATE_KEY="$(cat pexip-client.pem)" EVENT_SINK_PASSWORD='…'
//   az deployment group create -g <group> -f deploy/main.bicep -p deploy/main.bicepparam
using 'main.bicep'

param name = 'pexipdev'
param pexipBaseUrl = 'https://pexip-mgr.example.gov.bc.ca'
param pexipClientId = 'pexip-sdk'
param pexipPrivateKey = readEnvironmentVariable('PEXIP_PRIVATE_KEY')
param eventSinkUsername = 'pexip'
param eventSinkPassword = readEnvironmentVariable('EVENT_SINK_PASSWORD')
param roomPoolTarget = 10
param genesysAllowedDivisions = ''
param alertEmail = ''
