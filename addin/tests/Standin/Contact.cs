// The stand-in's ContactItem: Outlook's contact properties by name, FullName parsed into its parts
// as Outlook does, and the picture kept as the attachment ContactPicture.jpg.
using System;
using System.IO;

namespace OpConnect.Outlook.Standin
{
    public class ContactItem : ItemBase
    {
        public ContactItem(Application app, Folder folder) : base(app, folder)
        {
            FirstName = ""; MiddleName = ""; LastName = ""; Title = ""; Suffix = ""; FileAs = ""; NickName = ""; CompanyName = ""; Department = ""; JobTitle = ""; Email1Address = ""; Email1DisplayName = ""; Email2Address = ""; Email3Address = ""; BusinessTelephoneNumber = ""; Business2TelephoneNumber = ""; HomeTelephoneNumber = ""; Home2TelephoneNumber = ""; MobileTelephoneNumber = ""; BusinessFaxNumber = ""; HomeFaxNumber = ""; PagerNumber = ""; CarTelephoneNumber = ""; OtherTelephoneNumber = ""; AssistantTelephoneNumber = ""; PrimaryTelephoneNumber = ""; BusinessAddressStreet = ""; BusinessAddressCity = ""; BusinessAddressState = ""; BusinessAddressPostalCode = ""; BusinessAddressCountry = ""; BusinessAddressPostOfficeBox = ""; HomeAddressStreet = ""; HomeAddressCity = ""; HomeAddressState = ""; HomeAddressPostalCode = ""; HomeAddressCountry = ""; HomeAddressPostOfficeBox = ""; OtherAddressStreet = ""; OtherAddressCity = ""; OtherAddressState = ""; OtherAddressPostalCode = ""; OtherAddressCountry = ""; OtherAddressPostOfficeBox = ""; WebPage = ""; BusinessHomePage = ""; PersonalHomePage = ""; IMAddress = "";
            Birthday = NoDate; Anniversary = NoDate;
            Attachments = new Attachments();
        }

        public override string MessageClass { get { return "IPM.Contact"; } }
        public string Subject { get { return FullName; } }
        public int Sensitivity { get; set; }
        public int Importance { get; set; }
        public DateTime Birthday { get; set; }
        public DateTime Anniversary { get; set; }
        public Attachments Attachments { get; private set; }

        /// <summary>Setting FullName sets First/Last as Outlook's name parser would (simply: last word = last name).</summary>
        public string FullName
        {
            get
            {
                var parts = new[] { Title, FirstName, MiddleName, LastName, Suffix };
                return string.Join(" ", Array.FindAll(parts, p => !string.IsNullOrEmpty(p)));
            }
            set
            {
                Title = ""; MiddleName = ""; Suffix = "";
                var v = (value ?? "").Trim();
                int sp = v.LastIndexOf(' ');
                FirstName = sp < 0 ? v : v.Substring(0, sp);
                LastName = sp < 0 ? "" : v.Substring(sp + 1);
            }
        }

        public string FirstName { get; set; }
        public string MiddleName { get; set; }
        public string LastName { get; set; }
        public string Title { get; set; }
        public string Suffix { get; set; }
        public string FileAs { get; set; }
        public string NickName { get; set; }
        public string CompanyName { get; set; }
        public string Department { get; set; }
        public string JobTitle { get; set; }
        public string Email1Address { get; set; }
        public string Email1DisplayName { get; set; }
        public string Email2Address { get; set; }
        public string Email3Address { get; set; }
        public string BusinessTelephoneNumber { get; set; }
        public string Business2TelephoneNumber { get; set; }
        public string HomeTelephoneNumber { get; set; }
        public string Home2TelephoneNumber { get; set; }
        public string MobileTelephoneNumber { get; set; }
        public string BusinessFaxNumber { get; set; }
        public string HomeFaxNumber { get; set; }
        public string PagerNumber { get; set; }
        public string CarTelephoneNumber { get; set; }
        public string OtherTelephoneNumber { get; set; }
        public string AssistantTelephoneNumber { get; set; }
        public string PrimaryTelephoneNumber { get; set; }
        public string BusinessAddressStreet { get; set; }
        public string BusinessAddressCity { get; set; }
        public string BusinessAddressState { get; set; }
        public string BusinessAddressPostalCode { get; set; }
        public string BusinessAddressCountry { get; set; }
        public string BusinessAddressPostOfficeBox { get; set; }
        public string HomeAddressStreet { get; set; }
        public string HomeAddressCity { get; set; }
        public string HomeAddressState { get; set; }
        public string HomeAddressPostalCode { get; set; }
        public string HomeAddressCountry { get; set; }
        public string HomeAddressPostOfficeBox { get; set; }
        public string OtherAddressStreet { get; set; }
        public string OtherAddressCity { get; set; }
        public string OtherAddressState { get; set; }
        public string OtherAddressPostalCode { get; set; }
        public string OtherAddressCountry { get; set; }
        public string OtherAddressPostOfficeBox { get; set; }
        public string WebPage { get; set; }
        public string BusinessHomePage { get; set; }
        public string PersonalHomePage { get; set; }
        public string IMAddress { get; set; }

        public bool HasPicture { get { return Attachments.List.Exists(a => a.FileName == "ContactPicture.jpg"); } }

        public void AddPicture(string path)
        {
            App.Check("AddPicture");
            RemovePicture();
            Attachments.List.Add(new Attachment { FileName = "ContactPicture.jpg", Bytes = File.ReadAllBytes(path) });
        }

        public void RemovePicture() { Attachments.List.RemoveAll(a => a.FileName == "ContactPicture.jpg"); }
    }
}
