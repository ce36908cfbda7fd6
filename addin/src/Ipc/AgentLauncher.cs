// Starts the installed agent when the add-in finds nobody at the pipe: `opconnect.exe run`, as the
// Start-menu shortcut does (installer/windows/opconnect.wxs installs it per user).
using System;
using System.Diagnostics;
using System.IO;

namespace OpConnect.Outlook.Ipc
{
    public static class AgentLauncher
    {
        /// <summary>%LOCALAPPDATA%\Programs\opconnect\opconnect.exe, where the per-user MSI puts it.</summary>
        public static string InstalledPath()
        {
            var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
            return Path.Combine(Path.Combine(Path.Combine(local, "Programs"), "opconnect"), "opconnect.exe");
        }

        /// <summary>An action that starts `EXE run` detached, or null when the agent is not installed.</summary>
        public static Action For(string exe)
        {
            if (exe == null || !File.Exists(exe)) return null;
            return () =>
            {
                var info = new ProcessStartInfo(exe, "run")
                {
                    UseShellExecute = false,
                    CreateNoWindow = true,
                    WorkingDirectory = Path.GetDirectoryName(exe),
                };
                using (Process.Start(info)) { }
            };
        }
    }
}
