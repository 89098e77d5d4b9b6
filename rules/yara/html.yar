rule HTML_Credential_Phish_Form : phishing html
{
    meta:
        description = "HTML page that posts a password field to a remote host"
        severity = "medium"
    strings:
        $form = /<form[^>]{0,200}action\s*=\s*["']?https?:\/\//i
        $pw = /type\s*=\s*["']?password/i
        $brand = /(microsoft|office ?365|outlook|onedrive|sharepoint|paypal|docusign)/i
    condition:
        $form and $pw and $brand
}

rule HTML_Smuggling_Blob_Download : smuggling html
{
    meta:
        description = "Script that builds a Blob and forces its download"
        severity = "high"
    strings:
        $b1 = "createObjectURL" ascii
        $b2 = "msSaveOrOpenBlob" ascii
        $d = ".download" ascii
        $c = ".click()" ascii
        $atob = "atob(" ascii
    condition:
        any of ($b*) and $d and $c and $atob
}
