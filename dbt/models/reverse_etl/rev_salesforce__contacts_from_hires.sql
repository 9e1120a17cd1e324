-- Cross-provider: every candidate an ATS hired becomes a Contact in the Salesforce org of the same tenant,
-- matched by Email (looked up with SOQL; an existing Contact is updated by Id, else created by External_Id__c).
{{ hires_as_crm_people('salesforce') }}
