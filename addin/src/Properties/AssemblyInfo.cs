// The add-in assembly's identity. AnyCPU, so one DLL serves 32- and 64-bit Outlook.
using System.Reflection;
using System.Runtime.InteropServices;

[assembly: AssemblyTitle("OpConnect.Outlook")]
[assembly: AssemblyDescription("The opconnect add-in for classic Outlook: calendars, tasks, contacts, groups and notes from the opconnect agent")]
[assembly: AssemblyProduct("opconnect")]
[assembly: AssemblyVersion("0.1.0.0")]
[assembly: AssemblyFileVersion("0.1.0.0")]
// Only the add-in class (Host/Connect.cs) is visible to COM.
[assembly: ComVisible(false)]
