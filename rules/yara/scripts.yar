rule Script_PowerShell_Download_Exec : script downloader
{
    meta:
        description = "PowerShell that downloads and executes, or runs encoded commands"
        severity = "high"
    strings:
        $ps = "powershell" ascii nocase
        $d1 = "DownloadString" ascii nocase
        $d2 = "DownloadFile" ascii nocase
        $d3 = "Invoke-WebRequest" ascii nocase
        $x1 = "IEX" ascii
        $x2 = "Invoke-Expression" ascii nocase
        $enc = /-e(nc|ncodedcommand)?\s+[A-Za-z0-9+\/=]{40,}/ nocase
    condition:
        $ps and ((any of ($d*) and any of ($x*)) or $enc)
}

rule Script_WSH_Dropper : script dropper
{
    meta:
        description = "Windows Script Host code that writes and runs a file"
        severity = "high"
    strings:
        $o1 = "WScript.Shell" ascii nocase
        $o2 = "ADODB.Stream" ascii nocase
        $o3 = "MSXML2.XMLHTTP" ascii nocase
        $r1 = ".Run" ascii nocase
        $r2 = "SaveToFile" ascii nocase
    condition:
        2 of ($o*) and any of ($r*)
}
