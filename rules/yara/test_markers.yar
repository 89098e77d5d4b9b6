rule Postern_Test_Marker : test
{
    meta:
        description = "Harmless marker string used by Postern's own tests and demo"
        severity = "low"
    strings:
        $m = "POSTERN-YARA-TEST-MARKER-7f3a" ascii
    condition:
        $m
}
