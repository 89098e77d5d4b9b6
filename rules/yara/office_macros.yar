rule Office_Macro_AutoExec : office macro
{
    meta:
        description = "VBA project with an auto-executing entry point"
        severity = "high"
    strings:
        $vba = "vbaProject.bin" ascii nocase
        $ole_vba = "_VBA_PROJECT" wide ascii
        $a1 = "AutoOpen" ascii nocase
        $a2 = "Document_Open" ascii nocase
        $a3 = "Workbook_Open" ascii nocase
        $a4 = "Auto_Open" ascii nocase
    condition:
        ($vba or $ole_vba) and any of ($a*)
}
